"""Serving with an experiment: arms answer their customers, answers say so, exposures are written."""

import pytest
from django.utils import timezone

from recommendations.experiments import exposures, services
from recommendations.experiments.assignment import Assignment
from recommendations.experiments.models import Exposure
from recommendations.serving import get_cache
from tests.experiments.conftest import notice_now

pytestmark = pytest.mark.django_db

RECS = "/api/v1/recommendations/{}/"
BATCH = "/api/v1/recommendations/batch/"
CUSTOMERS = [f"C{i:04d}" for i in range(60)]


def arm_of(experiment, customer_id):
    return ["control", "B"][Assignment(experiment.pk, [0.5, 0.5]).arm_index(customer_id)]


def test_without_an_experiment_answers_carry_a_request_id_and_no_experiment(api, cf_version):
    first, second = (
        api.get(RECS.format("C0001"), HTTP_X_REQUEST_ID="client-chosen-id-1").json() for _ in range(2)
    )

    assert first["experiment"] is None and first["forced"] is False
    assert len(first["request_id"]) == 32 and first["request_id"] != second["request_id"]
    assert first["request_id"] != "client-chosen-id-1"


def test_each_customer_is_answered_by_their_arm(api, running, cf_version, cf_version_two):
    versions = {"control": cf_version.pk, "B": cf_version_two.pk}
    seen = set()
    for customer_id in CUSTOMERS:
        answer = api.get(RECS.format(customer_id), {"k": 3}).json()
        arm = arm_of(running, customer_id)
        assert answer["experiment"] == {"id": running.pk, "arm": arm, "version": versions[arm]}
        assert answer["model"]["cf"]["id"] == versions[arm]
        seen.add(arm)
    assert seen == {"control", "B"}
    again = api.get(RECS.format(CUSTOMERS[7])).json()
    assert again["experiment"]["arm"] == arm_of(running, CUSTOMERS[7])


def test_the_candidate_is_memory_mapped_like_the_active_version(running):
    served = get_cache().experiment("cf")
    assert [arm.model.memory_mapped for arm in served.arms] == [True, True]
    assert served.arms[0].model is get_cache().peek("cf")  # the control is the active model itself


def test_a_batch_answers_each_customer_from_their_arm_in_order(api, running):
    body = api.post(BATCH, {"customer_ids": CUSTOMERS[:20], "k": 2}, format="json").json()

    results = body["results"]
    assert [r["customer_id"] for r in results] == CUSTOMERS[:20]
    assert [r["experiment"]["arm"] for r in results] == [arm_of(running, c) for c in CUSTOMERS[:20]]
    assert len({r["request_id"] for r in results}) == 20
    single = api.get(RECS.format(CUSTOMERS[3]), {"k": 2}).json()
    assert results[3]["items"] == single["items"]


def test_exposures_are_written_by_the_flusher_with_what_was_served(api, running, settings):
    answers = [api.get(RECS.format(c), {"k": 3}).json() for c in CUSTOMERS[:10]]
    assert Exposure.objects.count() == 0  # the requests only buffered them

    exposures.buffer().flush()

    rows = {row.request_id: row for row in Exposure.objects.select_related("arm")}
    assert set(rows) == {answer["request_id"] for answer in answers}
    for answer in answers:
        row = rows[answer["request_id"]]
        assert row.customer_id == answer["customer_id"]
        assert row.arm.name == answer["experiment"]["arm"]
        assert row.items == [item["item_id"] for item in answer["items"]]
        assert abs((row.served_at - timezone.now()).total_seconds()) < 60


@pytest.mark.django_db(transaction=True)
def test_the_flusher_thread_writes_without_being_asked(api, running, settings):
    settings.HYBRIDREC_EXPERIMENT_FLUSH_SECONDS = 0.05
    buffer = exposures.ExposureBuffer()
    buffer.record(
        request_id="r1",
        experiment_id=running.pk,
        arm_id=running.arms.first().pk,
        customer_id="C1",
        items=["I001"],
    )
    try:
        import time

        deadline = time.monotonic() + 10
        while not Exposure.objects.filter(request_id="r1").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert Exposure.objects.filter(request_id="r1").exists()
        assert buffer.pending() == 0
    finally:
        buffer.stop()


def test_a_full_buffer_drops_and_counts_instead_of_waiting(settings, running):
    settings.HYBRIDREC_EXPERIMENT_BUFFER = 3
    buffer = exposures.ExposureBuffer()
    arm_id = running.arms.first().pk
    try:
        for n in range(5):
            buffer.record(
                request_id=f"r{n}", experiment_id=running.pk, arm_id=arm_id, customer_id="C", items=[]
            )
        assert (buffer.pending(), buffer.dropped) == (3, 2)
        assert buffer.flush() == 3
    finally:
        buffer.stop()
    assert Exposure.objects.count() == 3


def test_staff_can_force_a_version_and_it_is_not_counted(client_for, running, cf_version_two):
    staff = client_for("staff")
    customer = next(c for c in CUSTOMERS if arm_of(running, c) == "control")

    answer = staff.get(RECS.format(customer), {"version": cf_version_two.pk}).json()
    exposures.buffer().flush()

    assert answer["forced"] is True and answer["experiment"] is None
    assert answer["model"]["cf"]["id"] == cf_version_two.pk
    assert not Exposure.objects.filter(request_id=answer["request_id"]).exists()


def test_forcing_is_refused_clearly(api, client_for, running, cf_version_two, register):
    from tests import factories

    denied = api.get(RECS.format("C0001"), {"version": cf_version_two.pk})
    assert denied.status_code == 403 and denied.json()["code"] == "forbidden"
    staff = client_for("staff")
    unknown = staff.get(RECS.format("C0001"), {"version": 987654})
    assert unknown.status_code == 404 and unknown.json()["code"] == "not_found"
    bad = staff.get(RECS.format("C0001"), {"version": "abc"})
    assert bad.status_code == 400 and "version" in bad.json()["errors"]
    idle = register("cf", factories.cf_array_set(seed=5), label="cf-idle")
    not_served = staff.get(RECS.format("C0001"), {"version": idle.pk})
    assert not_served.status_code == 409 and not_served.json()["code"] == "version_not_served"
    zero = staff.post(BATCH, {"customer_ids": ["C0001"], "version": 0}, format="json")
    assert zero.status_code == 400 and "version" in zero.json()["errors"]
    cb = register("cb", factories.cb_array_set(seed=1), activate=True, label="cb-one")
    other_kind = staff.get(RECS.format("C0001"), {"version": cb.pk})
    assert other_kind.status_code == 409 and "is a cb version" in other_kind.json()["detail"]


def test_stop_with_promotion_swaps_the_active_version_and_drops_the_candidate(api, running, cf_version_two):
    cache = get_cache()
    candidate = cache.experiment("cf").arms[1].model

    services.experiment_stop(experiment=running, promote=cf_version_two.pk)
    notice_now(cache)

    assert cache.experiment("cf") is None
    assert cache.peek("cf") is candidate  # the loaded candidate was swapped in, not loaded again
    answer = api.get(RECS.format("C0001")).json()
    assert answer["experiment"] is None and answer["model"]["cf"]["id"] == cf_version_two.pk


def test_stop_keeping_the_control_drops_the_candidate(api, running, cf_version):
    cache = get_cache()

    services.experiment_stop(experiment=running, keep_control=True)
    notice_now(cache)

    assert cache.experiment("cf") is None
    assert cache.model_for_version("cf", running.arms.get(name="B").version_id) is None
    assert api.get(RECS.format("C0001")).json()["model"]["cf"]["id"] == cf_version.pk


def test_a_candidate_whose_file_changed_stops_the_split_before_any_answer_reads_it(api, running, settings):
    from pathlib import Path

    candidate = running.arms.get(name="B").version
    path = Path(settings.MEDIA_ROOT) / candidate.file.name
    path.chmod(0o644)  # stored bundles are read-only
    with open(path, "r+b") as handle:
        handle.seek(path.stat().st_size // 2)
        chunk = handle.read(64)
        handle.seek(-len(chunk), 1)
        handle.write(bytes(255 - b for b in chunk))

    answers = [api.get(RECS.format(c)).json() for c in CUSTOMERS[:10]]
    notice_now(get_cache())
    later = api.get(RECS.format(CUSTOMERS[0])).json()

    assert all(a["experiment"] is None and a["model"]["cf"]["id"] != candidate.pk for a in answers)
    assert later["experiment"] is None  # the changed file is refused when the split is built again
    assert get_cache().describe_withdrawn_arms()["cf"]["arms"]["B"]["version"] == candidate.pk
    exposures.buffer().flush()
    assert not Exposure.objects.filter(request_id__in=[a["request_id"] for a in answers]).exists()


def test_exposures_of_a_deleted_experiment_are_dropped_and_the_rest_written(
    running, cf_version, cf_version_two
):
    buffer = exposures.ExposureBuffer()
    arm = running.arms.first()
    for n in range(3):
        buffer.record(
            request_id=f"kept{n}", experiment_id=running.pk, arm_id=arm.pk, customer_id="C", items=["I1"]
        )
    buffer.record(request_id="gone", experiment_id=running.pk, arm_id=987654, customer_id="C", items=[])
    try:
        assert buffer.flush() == 3
    finally:
        buffer.stop()
    assert sorted(Exposure.objects.values_list("request_id", flat=True)) == ["kept0", "kept1", "kept2"]
    assert buffer.dropped == 1
