"""One exposure the database refuses never keeps the others out, and every loss is counted."""

import pytest
from django.db import OperationalError
from prometheus_client import REGISTRY

from hybridrec.api.fields import MAX_ID_LENGTH, IdField
from modelstore.api.serializers import UploadRequest
from modelstore.models import ActivationEvent, ModelVersion
from recommendations.api.answering import new_request_id
from recommendations.experiments import exposures
from recommendations.experiments.api.serializers import StartRequest
from recommendations.experiments.models import Experiment, Exposure
from recommendations.feedback.api.serializers import EventIn
from recommendations.feedback.models import Event

pytestmark = pytest.mark.django_db


def lost(reason):
    return REGISTRY.get_sample_value("hybridrec_experiment_exposures_lost_total", {"reason": reason}) or 0.0


def record(buffer, experiment, request_id, customer_id="C1"):
    buffer.record(
        request_id=request_id,
        experiment_id=experiment.pk,
        arm_id=experiment.arms.first().pk,
        customer_id=customer_id,
        items=["I001"],
    )


def test_a_customer_id_of_any_length_the_api_takes_is_counted(api, running):
    longest = "c" * MAX_ID_LENGTH
    answers = [api.get(f"/api/v1/recommendations/{customer}/") for customer in ("C0001", longest, "C0002")]
    assert [answer.status_code for answer in answers] == [200, 200, 200]
    assert exposures.buffer().flush() == 3
    stored = set(Exposure.objects.values_list("customer_id", flat=True))
    assert stored == {"C0001", longest, "C0002"}


def test_a_row_the_database_refuses_is_left_out_and_counted_and_the_others_written(running):
    buffer = exposures.ExposureBuffer()
    before = lost("refused")
    for n in range(5):
        record(buffer, running, f"good-{n}")
    record(buffer, running, "bad-customer", customer_id="C\ud800")  # no driver can encode it
    record(buffer, running, "bad\udfffrequest")
    for n in range(5, 8):
        record(buffer, running, f"good-{n}")
    try:
        assert buffer.flush() == 8
    finally:
        buffer.stop()
    assert sorted(Exposure.objects.values_list("request_id", flat=True)) == [f"good-{n}" for n in range(8)]
    assert buffer.pending() == 0
    assert lost("refused") - before == 2


def test_a_batch_is_written_at_once_and_only_a_refused_one_row_by_row(running, monkeypatch):
    buffer = exposures.ExposureBuffer()
    monkeypatch.setattr(exposures, "BATCH_SIZE", 4)
    writes = []
    real_write = exposures._write
    monkeypatch.setattr(exposures, "_write", lambda rows: (writes.append(len(rows)), real_write(rows)))
    for n in range(8):
        record(buffer, running, f"r{n}", customer_id="C\ud800" if n == 5 else "C1")
    try:
        assert buffer.flush() == 7
    finally:
        buffer.stop()
    assert writes == [4, 4, 1, 1, 1, 1]


def test_while_the_database_is_away_the_rows_wait_for_the_next_flush(running, monkeypatch):
    buffer = exposures.ExposureBuffer()
    for n in range(3):
        record(buffer, running, f"r{n}")
    real_write = exposures._write

    def away(rows):
        raise OperationalError("connection refused")

    monkeypatch.setattr(exposures, "_write", away)
    monkeypatch.setattr(exposures.connections, "close_all", lambda: None)  # keep the test's transaction
    try:
        assert buffer.flush() == 0
        assert buffer.pending() == 3
        monkeypatch.setattr(exposures, "_write", real_write)
        assert buffer.flush() == 3
    finally:
        buffer.stop()
    assert Exposure.objects.count() == 3


def test_what_is_still_buffered_when_the_process_ends_is_counted_as_lost(running, monkeypatch):
    # No flusher thread: its own connection would not see this test's uncommitted arms.
    monkeypatch.setattr(exposures.ExposureBuffer, "_start", lambda self: None)
    buffer = exposures.ExposureBuffer()
    for n in range(4):
        record(buffer, running, f"r{n}")
    monkeypatch.setattr(exposures, "_buffer", buffer)
    monkeypatch.setattr(exposures, "_write", lambda rows: (_ for _ in ()).throw(OperationalError("gone")))
    monkeypatch.setattr(exposures.connections, "close_all", lambda: None)
    before = lost("exit")
    exposures._flush_at_exit()
    assert lost("exit") - before == 4


def test_the_losses_are_in_metrics(client, running, settings):
    settings.HYBRIDREC_METRICS_ALLOW = ["127.0.0.1/32"]
    buffer = exposures.ExposureBuffer()
    record(buffer, running, "bad", customer_id="C\ud800")
    try:
        buffer.flush()
    finally:
        buffer.stop()
    text = client.get("/metrics", REMOTE_ADDR="127.0.0.1").content.decode()
    assert 'hybridrec_experiment_exposures_lost_total{reason="refused"}' in text


def column(model, name):
    return model._meta.get_field(name).max_length


def test_every_value_the_api_takes_fits_the_column_it_lands_in():
    """Each pair: the longest value a door accepts, the column that stores it."""
    event = EventIn().fields
    pairs = {
        "recommendation customer_id → exposure": (IdField().max_length, column(Exposure, "customer_id")),
        "event customer_id": (event["customer_id"].max_length, column(Event, "customer_id")),
        "event item_id": (event["item_id"].max_length, column(Event, "item_id")),
        "event request_id": (event["request_id"].max_length, column(Event, "request_id")),
        "event type": (max(len(kind) for kind in Event.Type.values), column(Event, "type")),
        "upload label": (UploadRequest().fields["label"].max_length, column(ModelVersion, "label")),
        "upload label → audit": (
            UploadRequest().fields["label"].max_length,
            column(ActivationEvent, "to_label"),
        ),
        "experiment name": (StartRequest().fields["name"].max_length, column(Experiment, "name")),
        "served request_id → exposure": (len(new_request_id()), column(Exposure, "request_id")),
    }
    too_long = {name: lengths for name, lengths in pairs.items() if lengths[0] > lengths[1]}
    assert too_long == {}
    # The ids of events and of exposures are the same ids: one length for both.
    assert column(Exposure, "customer_id") == column(Event, "customer_id") == MAX_ID_LENGTH


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_what_a_refused_row_costs_a_flush(running, monkeypatch):
    """Print the seconds to flush 10,000 exposures: clean, one refused row, one in every batch."""
    import time

    monkeypatch.setattr(exposures.ExposureBuffer, "_start", lambda self: None)
    timings = {}
    for name, bad_every in (
        ("clean", None),
        ("one refused", 10_000),
        ("one per batch", exposures.BATCH_SIZE),
    ):
        Exposure.objects.all().delete()
        buffer = exposures.ExposureBuffer()
        for n in range(10_000):
            bad = bad_every is not None and n % bad_every == bad_every // 2
            record(buffer, running, f"r{n}", customer_id="C\ud800" if bad else f"C{n}")
        started = time.perf_counter()
        written = buffer.flush()
        timings[name] = time.perf_counter() - started
        refused = 0 if bad_every is None else 10_000 // bad_every
        assert written == Exposure.objects.count() == 10_000 - refused
    print("\n" + ", ".join(f"{name}: {seconds:.3f} s" for name, seconds in timings.items()))
    # Row by row costs a transaction a row: bounded, and only for the batch that holds the bad row.
    assert timings["one refused"] < timings["one per batch"]


@pytest.mark.django_db(transaction=True)
def test_rows_of_an_arm_deleted_during_the_write_are_left_out_and_the_others_written(running, monkeypatch):
    monkeypatch.setattr(exposures.ExposureBuffer, "_start", lambda self: None)
    control, candidate = running.arms.order_by("position")
    buffer = exposures.ExposureBuffer()
    for n in range(6):
        buffer.record(
            request_id=f"r{n}",
            experiment_id=running.pk,
            arm_id=(candidate if n % 3 == 0 else control).pk,
            customer_id="C1",
            items=[],
        )
    real_store = exposures.store

    def store_after_the_candidate_is_deleted(rows):
        # After the arms were checked, before the rows are written: the foreign key fails at commit.
        type(candidate).objects.filter(pk=candidate.pk).delete()
        return real_store(rows)

    monkeypatch.setattr(exposures, "store", store_after_the_candidate_is_deleted)
    before = lost("refused")
    assert buffer.flush() == 4
    assert sorted(Exposure.objects.values_list("request_id", flat=True)) == ["r1", "r2", "r4", "r5"]
    assert lost("refused") - before == 2
