"""Attribution of events to arms, and the numbers the results show (SQLite here; PostgreSQL with DATABASE_URL)."""

from datetime import timedelta

import pytest
from django.template.loader import render_to_string
from django.utils import timezone

from recommendations.experiments import counting, stats
from recommendations.experiments.models import Arm, Experiment, Exposure
from recommendations.experiments.results import experiment_results, series
from recommendations.feedback.models import Event

pytestmark = pytest.mark.django_db


@pytest.fixture
def experiment(cf_version, cf_version_two):
    started = timezone.now() - timedelta(hours=30)
    experiment = Experiment.objects.create(kind="cf", name="ranker", started_at=started)
    Arm.objects.create(
        experiment=experiment, version=cf_version, share=0.5, is_control=True, name="control", position=0
    )
    Arm.objects.create(experiment=experiment, version=cf_version_two, share=0.5, name="B", position=1)
    return experiment


def arm(experiment, name):
    return experiment.arms.get(name=name)


def expose(experiment, name, request_id, customer_id, items, served_at):
    """Store and count one answer, as the exposure flusher does."""
    exposure = Exposure.objects.create(
        experiment=experiment,
        arm=arm(experiment, name),
        request_id=request_id,
        customer_id=customer_id,
        items=items,
        served_at=served_at,
    )
    counting.exposures_count(
        rows=[(request_id, experiment.pk, exposure.arm_id, customer_id, items, served_at)]
    )
    return exposure


def events(*rows):
    """Store and count events, as the events endpoint does, grouped by when they were received."""
    stored = Event.objects.bulk_create(
        [
            Event(
                type=kind,
                customer_id=customer,
                item_id=item,
                request_id=request_id,
                ts=ts,
                received_at=received,
            )
            for kind, customer, item, request_id, ts, received in rows
        ]
    )
    for received in sorted({event.received_at for event in stored}):
        counting.events_count(events=[e for e in stored if e.received_at == received], now=received)


def counts(results, name):
    row = next(row for row in results["arms"] if row["arm"] == name)
    return {key: row[key] for key in ("served", "impressions", "clicks", "add_to_carts", "purchases")}


def test_events_count_for_the_answer_their_request_id_names(experiment):
    now = timezone.now()
    served = now - timedelta(hours=2)
    expose(experiment, "control", "r1", "c1", ["i1", "i2"], served)
    expose(experiment, "B", "r2", "c2", ["i1", "i3"], served)
    events(
        ("impression", "c1", "i1", "r1", None, now),
        ("impression", "c1", "i2", "r1", None, now),
        ("click", "c1", "i2", "r1", None, now),
        ("impression", "c2", "i3", "r2", None, now),
        ("add_to_cart", "c2", "i3", "r2", None, now),
        ("impression", "c1", "i9", "r1", None, now),  # not an item of that answer
        ("click", "c2", "i1", "r1", None, now),  # another customer's answer
        ("click", "c1", "i1", "r-unknown", None, now),  # names no answer: counts nowhere
    )
    results = experiment_results(experiment)
    assert counts(results, "control") == {
        "served": 1,
        "impressions": 2,
        "clicks": 1,
        "add_to_carts": 0,
        "purchases": 0,
    }
    assert counts(results, "B") == {
        "served": 1,
        "impressions": 1,
        "clicks": 0,
        "add_to_carts": 1,
        "purchases": 0,
    }


def test_events_without_request_id_count_within_the_window_after_the_item_was_served(experiment, settings):
    settings.HYBRIDREC_ATTRIBUTION_WINDOW = 24 * 3600
    now = timezone.now()
    served = now - timedelta(hours=28)
    expose(experiment, "B", "r1", "c1", ["i1", "i2", "i3"], served)
    events(
        ("purchase", "c1", "i1", None, served + timedelta(hours=1), now),  # within 24 h
        ("purchase", "c1", "i2", None, None, served + timedelta(hours=23)),  # no ts: received_at
        ("purchase", "c1", "i3", None, served + timedelta(hours=25), now),  # after the window
        ("purchase", "c1", "i1", None, served - timedelta(minutes=5), now),  # before it was served
        ("purchase", "c1", "i7", None, served + timedelta(hours=1), now),  # never served to c1
        ("purchase", "c9", "i1", None, served + timedelta(hours=1), now),  # someone else
    )
    assert counts(experiment_results(experiment), "B")["purchases"] == 2
    settings.HYBRIDREC_ATTRIBUTION_WINDOW = 26 * 3600
    counting.experiment_recount(experiment=experiment)
    assert counts(experiment_results(experiment), "B")["purchases"] == 3


def test_another_experiment_s_answers_and_events_before_the_start_do_not_count(
    experiment, cf_version, cf_version_two
):
    now = timezone.now()
    other = Experiment.objects.create(
        kind="cb", name="old", status="stopped", started_at=now - timedelta(days=3)
    )
    Arm.objects.create(
        experiment=other, version=cf_version, share=1.0, is_control=True, name="control", position=0
    )
    expose(other, "control", "r-old", "c1", ["i1"], now - timedelta(hours=1))
    expose(experiment, "control", "r1", "c2", ["i1"], now - timedelta(hours=1))
    events(
        ("impression", "c1", "i1", "r-old", None, now),
        ("impression", "c2", "i1", "r1", None, experiment.started_at - timedelta(hours=1)),
    )
    assert counts(experiment_results(experiment), "control")["impressions"] == 0


def _impressions(experiment, name, customers, clicks_every, at):
    """Serve ``customers`` answers of ten items from arm ``name``; one click every ``clicks_every`` impressions."""
    rows, n = [], 0
    for c in range(customers):
        request_id = f"{name}-{c}"
        items = [f"i{j}" for j in range(10)]
        expose(experiment, name, request_id, f"{name}-c{c}", items, at)
        for item in items:
            rows.append(("impression", f"{name}-c{c}", item, request_id, None, at))
            if n % clicks_every == 0:
                rows.append(("click", f"{name}-c{c}", item, request_id, None, at))
            n += 1
    events(*rows)


def test_rates_intervals_and_the_test_against_the_control(experiment, settings):
    settings.HYBRIDREC_EXPERIMENT_BASELINE_RATE = 0.1
    settings.HYBRIDREC_EXPERIMENT_MIN_EFFECT = 0.1
    at = timezone.now() - timedelta(hours=1)
    _impressions(experiment, "control", 30, 10, at)  # 300 impressions, 30 clicks
    _impressions(experiment, "B", 30, 4, at)  # 300 impressions, 75 clicks
    results = experiment_results(experiment)
    control, b = results["arms"]
    assert control["ctr"] == stats.wilson(30, 300).as_json()
    assert b["ctr"]["rate"] == 0.25
    assert control["vs_control"] is None
    expected = stats.two_proportion_z_test(30, 300, 75, 300)
    assert b["vs_control"]["ctr"]["p_value"] == pytest.approx(expected.p_value)
    assert b["vs_control"]["ctr"]["difference"] == pytest.approx(0.15)
    assert results["plan"]["impressions_per_arm"] == stats.sample_size_per_arm(0.1, 0.1) <= 300
    assert results["planned_size_reached"] is True
    assert results["warning"] is None
    assert b["vs_control"]["ctr"]["significant"] is True


def test_before_the_planned_size_nothing_is_called_and_the_page_warns(experiment, settings):
    settings.HYBRIDREC_EXPERIMENT_BASELINE_RATE = 0.1
    settings.HYBRIDREC_EXPERIMENT_MIN_EFFECT = 0.02
    at = timezone.now() - timedelta(hours=1)
    _impressions(experiment, "control", 30, 10, at)
    _impressions(experiment, "B", 30, 4, at)
    results = experiment_results(experiment)
    b = results["arms"][1]
    assert b["vs_control"]["ctr"]["p_value"] < 0.001
    assert b["vs_control"]["ctr"]["significant"] is False
    assert results["planned_size_reached"] is False
    assert "3,841" in results["warning"] and "false positives" in results["warning"]


def test_holm_adjusts_across_two_candidates(experiment, cf_version_three, settings):
    Arm.objects.create(experiment=experiment, version=cf_version_three, share=0.2, name="C", position=2)
    at = timezone.now() - timedelta(hours=1)
    _impressions(experiment, "control", 20, 10, at)
    _impressions(experiment, "B", 20, 6, at)
    _impressions(experiment, "C", 20, 8, at)
    results = experiment_results(experiment)
    raw = [row["vs_control"]["ctr"]["p_value"] for row in results["arms"][1:]]
    adjusted = [row["vs_control"]["ctr"]["p_adjusted"] for row in results["arms"][1:]]
    assert adjusted == pytest.approx(stats.holm(raw))
    assert results["plan"]["comparisons"] == 2


def test_the_series_is_cumulative_per_hour_for_a_short_experiment(experiment):
    start = experiment.started_at.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    _impressions(experiment, "control", 2, 10, start)
    _impressions(experiment, "B", 1, 5, start)
    later = start + timedelta(hours=2, minutes=10)
    expose(experiment, "B", "B-late", "late", ["x"], later)
    events(("impression", "late", "x", "B-late", None, later), ("click", "late", "x", "B-late", None, later))
    chart = series(experiment)
    assert chart["bucket"] == "hour"
    assert [(p["impressions"], p["clicks"]) for p in chart["arms"]["control"]] == [(20, 2)]
    assert [(p["impressions"], p["clicks"]) for p in chart["arms"]["B"]] == [(10, 2), (11, 3)]
    assert chart["arms"]["B"][1]["rate"] == pytest.approx(3 / 11)
    assert chart["arms"]["B"][1]["low"] < 3 / 11 < chart["arms"]["B"][1]["high"]


def test_the_results_panel_shows_the_numbers_the_plan_and_the_chart(experiment, settings):
    settings.HYBRIDREC_EXPERIMENT_BASELINE_RATE = 0.1
    settings.HYBRIDREC_EXPERIMENT_MIN_EFFECT = 0.1
    at = timezone.now() - timedelta(hours=1)
    _impressions(experiment, "control", 30, 10, at)
    _impressions(experiment, "B", 30, 4, at)
    results = experiment_results(experiment, with_series=True)
    html = render_to_string("experiments/results_panel.html", {"results": results})
    assert "<svg" in html and "click-through (cumulative)" in html
    assert "0.2500 (" in html  # B's click-through with its interval
    assert "significant" in html
    assert f"<strong>{results['plan']['impressions_per_arm']}</strong> impressions per arm" in html
    assert "experiment-warning" not in html


def test_the_results_panel_warns_before_the_planned_size_and_draws_nothing_without_events(experiment):
    html = render_to_string(
        "experiments/results_panel.html", {"results": experiment_results(experiment, with_series=True)}
    )
    assert "experiment-warning" in html and "false positives" in html
    assert "<svg" not in html
