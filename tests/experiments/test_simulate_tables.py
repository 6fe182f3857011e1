"""The A/A false-positive rate and the power over many seeds, through the results code on simulated tables.

Each seed writes an experiment's exposures and events straight into the database (no HTTP: 100
seeds through the API would take minutes), counts them with ``experiment_recount``, then reads ``experiment_results`` exactly as the
page and the API do. The plan: baseline click-through 10 %, smallest effect +5 points, alpha
0.05 two-sided, power 0.8, which needs 686 impressions per arm; every arm gets 69 answers of
ten items (690 impressions). ``test_simulate.py`` runs seeds fully through the API.
"""

from datetime import timedelta

import numpy as np
import pytest
from django.utils import timezone

from recommendations.experiments import counting, stats
from recommendations.experiments.models import Arm, Experiment, Exposure
from recommendations.experiments.results import experiment_results
from recommendations.feedback.models import Event

pytestmark = pytest.mark.django_db

BASELINE, EFFECT, ITEMS_PER_ANSWER, SEEDS = 0.10, 0.05, 10, 100
# Two standard deviations of a binomial(100, 0.05), as a share of 100 runs.
SAMPLING_ERROR = 2 * np.sqrt(SEEDS * 0.05 * 0.95) / SEEDS


@pytest.fixture
def planned(settings):
    settings.HYBRIDREC_EXPERIMENT_BASELINE_RATE = BASELINE
    settings.HYBRIDREC_EXPERIMENT_MIN_EFFECT = EFFECT
    settings.HYBRIDREC_EXPERIMENT_POWER = 0.8
    settings.HYBRIDREC_EXPERIMENT_ALPHA = 0.05
    return stats.sample_size_per_arm(BASELINE, EFFECT)


def simulate(seed, versions, rates, impressions_per_arm):
    """Write one experiment: per arm, answers of ten items, an impression each, clicks at the arm's rate."""
    rng = np.random.default_rng(seed)
    at = timezone.now() - timedelta(hours=2)
    experiment = Experiment.objects.create(
        kind="cf", name=f"seed {seed}", status="stopped", started_at=at, ended_at=at + timedelta(hours=1)
    )
    answers = -(-impressions_per_arm // ITEMS_PER_ANSWER)
    exposures, events = [], []
    for position, (version, rate) in enumerate(zip(versions, rates, strict=True)):
        arm = Arm.objects.create(
            experiment=experiment,
            version=version,
            share=1 / len(versions),
            is_control=position == 0,
            name="control" if position == 0 else chr(ord("A") + position),
            position=position,
        )
        clicked = rng.random((answers, ITEMS_PER_ANSWER)) < rate
        for answer in range(answers):
            customer, request_id = f"s{seed}-{position}-{answer}", f"r{seed}-{position}-{answer}"
            items = [f"i{j}" for j in range(ITEMS_PER_ANSWER)]
            exposures.append(
                Exposure(
                    experiment=experiment,
                    arm=arm,
                    request_id=request_id,
                    customer_id=customer,
                    items=items,
                    served_at=at,
                )
            )
            for j, item in enumerate(items):
                events.append(
                    Event(
                        type="impression",
                        customer_id=customer,
                        item_id=item,
                        request_id=request_id,
                        received_at=at,
                    )
                )
                if clicked[answer, j]:
                    events.append(
                        Event(
                            type="click",
                            customer_id=customer,
                            item_id=item,
                            request_id=request_id,
                            received_at=at,
                        )
                    )
    Exposure.objects.bulk_create(exposures, batch_size=2000)
    Event.objects.bulk_create(events, batch_size=2000)
    # Written behind the counters' back: count them as the repair does.
    counting.experiment_recount(experiment=experiment)
    return experiment


def called(seed, versions, rates, impressions_per_arm):
    """Run one seed; return whether a candidate was called better or worse (significant), then clear the tables."""
    experiment = simulate(seed, versions, rates, impressions_per_arm)
    results = experiment_results(experiment)
    assert results["planned_size_reached"]
    assert all(row["impressions"] >= impressions_per_arm for row in results["arms"])
    outcome = any(row["vs_control"]["ctr"]["significant"] for row in results["arms"][1:])
    Event.objects.all().delete()
    experiment.delete()
    return outcome


@pytest.mark.slow
def test_a_a_runs_over_100_seeds_call_a_difference_at_most_5_percent_of_the_time(
    planned, cf_version, cf_version_two
):
    false_positives = sum(
        called(seed, [cf_version, cf_version_two], [BASELINE, BASELINE], planned) for seed in range(SEEDS)
    )
    print(f"A/A: a difference called in {false_positives} of {SEEDS} seeds")
    assert false_positives / SEEDS <= 0.05 + SAMPLING_ERROR, false_positives


@pytest.mark.slow
def test_a_candidate_5_points_better_is_called_in_about_80_percent_of_100_seeds(
    planned, cf_version, cf_version_two
):
    found = sum(
        called(1000 + seed, [cf_version, cf_version_two], [BASELINE, BASELINE + EFFECT], planned)
        for seed in range(SEEDS)
    )
    print(f"+{EFFECT:.2f}: the better candidate called in {found} of {SEEDS} seeds")
    # Planned power 0.8; two standard deviations of a binomial(100, 0.8) either side.
    assert abs(found / SEEDS - 0.8) <= 2 * np.sqrt(0.8 * 0.2 / SEEDS), found


def test_one_seed_of_each_through_the_results_code(planned, cf_version, cf_version_two):
    """A fast check of the same path: seed 0 of the A/A runs is not called, seed 1000 of the better candidate is."""
    assert not called(0, [cf_version, cf_version_two], [BASELINE, BASELINE], planned)
    assert called(1000, [cf_version, cf_version_two], [BASELINE, BASELINE + EFFECT], planned)
