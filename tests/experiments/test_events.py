"""POST /api/v1/events/: who may report, what is stored, what is refused and why."""

import json
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.utils import timezone

from hybridrec.api.throttling import ScopedWindowThrottle
from recommendations.feedback.models import Event

pytestmark = pytest.mark.django_db

URL = "/api/v1/events/"


def event(**fields):
    return {"type": "click", "customer_id": "c1", "item_id": "i1", **fields}


def post(client, body):
    return client.post(URL, json.dumps(body), content_type="application/json")


def test_a_reporter_s_events_are_stored_and_the_answer_is_202(reporter):
    now = timezone.now().replace(microsecond=0)
    answer = post(
        reporter,
        {
            "events": [
                event(type="impression", request_id="r-1"),
                event(type="purchase", customer_id="c2", item_id="i9", ts=now.isoformat()),
            ]
        },
    )
    assert answer.status_code == 202
    assert answer.json() == {"accepted": 2, "rejected": []}
    stored = {(e.type, e.customer_id, e.item_id, e.request_id, e.ts) for e in Event.objects.all()}
    assert stored == {("impression", "c1", "i1", "r-1", None), ("purchase", "c2", "i9", None, now)}


@pytest.mark.parametrize(
    ("role", "status"), [("anonymous", 401), ("user", 403), ("staff", 403), ("superuser", 202)]
)
def test_only_users_with_feedback_add_event_may_write(client_for, role, status, settings):
    settings.HYBRIDREC_PUBLIC_API = True  # anonymous reads being public must not open writes
    answer = post(client_for(role), {"events": [event()]})
    assert answer.status_code == status
    assert Event.objects.count() == (1 if status == 202 else 0)


def test_bad_events_are_refused_one_by_one_and_the_good_ones_kept(reporter):
    now = timezone.now()
    batch = [
        event(customer_id="keep-0"),
        event(type="like"),
        event(customer_id=None),
        {"type": "click", "item_id": "i1"},
        event(item_id="bad\x00id"),
        event(ts=(now + timedelta(hours=1)).isoformat()),
        event(ts=(now - timedelta(days=30)).isoformat()),
        event(ts="yesterday"),
        event(colour="red"),
        "click",
        event(request_id="r" * 65),
        event(customer_id="keep-1", type="add_to_cart"),
    ]
    answer = post(reporter, {"events": batch})
    assert answer.status_code == 202
    body = answer.json()
    assert body["accepted"] == 2
    reasons = {r["index"]: r["errors"] for r in body["rejected"]}
    assert sorted(reasons) == list(range(1, 11))
    assert list(reasons[1]) == ["type"]
    assert "add_to_cart" in reasons[1]["type"][0]
    assert reasons[2] == {"customer_id": ["Must be a string."]}
    assert reasons[3] == {"customer_id": ["This field is required."]}
    assert "control characters" in reasons[4]["item_id"][0]
    assert "future" in reasons[5]["ts"][0]
    assert "older than" in reasons[6]["ts"][0]
    assert "ISO 8601" in reasons[7]["ts"][0]
    assert "colour" in reasons[8]["non_field_errors"][0]
    assert "JSON object" in reasons[9]["non_field_errors"][0]
    assert "64 characters" in reasons[10]["request_id"][0]
    assert sorted(Event.objects.values_list("customer_id", flat=True)) == ["keep-0", "keep-1"]


def test_a_batch_over_the_limit_is_a_413_that_says_so_and_stores_nothing(reporter, settings):
    settings.HYBRIDREC_EVENTS_MAX_BATCH = 5
    answer = post(reporter, {"events": [event()] * 6})
    assert answer.status_code == 413
    assert answer.json()["code"] == "too_many_events"
    assert "at most 5 events" in answer.json()["detail"]
    assert Event.objects.count() == 0


def test_a_body_over_its_byte_limit_is_a_413_before_it_is_parsed(reporter, settings):
    settings.HYBRIDREC_EVENTS_MAX_BODY_BYTES = 1000
    answer = post(reporter, {"events": [event(item_id="x" * 150)] * 10})
    assert answer.status_code == 413
    assert answer.json()["code"] == "too_large"
    assert "HYBRIDREC_EVENTS_MAX_BODY_BYTES" in answer.json()["detail"]
    assert Event.objects.count() == 0


@pytest.mark.parametrize(
    "body",
    [[event()], {"events": event()}, {"event": [event()]}, {"events": [event()], "extra": 1}, "null"],
)
def test_a_body_that_is_not_an_events_list_is_a_400(reporter, body):
    answer = post(reporter, body)
    assert answer.status_code == 400
    assert answer.json()["code"] == "invalid"
    assert Event.objects.count() == 0


def test_json_that_does_not_parse_is_a_400(reporter):
    answer = reporter.post(URL, '{"events": [', content_type="application/json")
    assert answer.status_code == 400
    assert answer.json()["code"] == "parse_error"


def test_a_flood_is_throttled(reporter, monkeypatch):
    cache.clear()
    monkeypatch.setattr(
        ScopedWindowThrottle, "THROTTLE_RATES", {**ScopedWindowThrottle.THROTTLE_RATES, "events": "2/min"}
    )
    statuses = [post(reporter, {"events": [event()]}).status_code for _ in range(3)]
    assert statuses == [202, 202, 429]
    assert Event.objects.count() == 2


def test_export_events_writes_a_training_file(tmp_path):
    Event.objects.bulk_create(
        [
            Event(type="impression", customer_id="c1", item_id="i1"),
            Event(type="click", customer_id="c1", item_id="i1"),
            Event(type="purchase", customer_id="c2", item_id="i2"),
        ]
    )
    out = tmp_path / "events.csv"
    call_command("export_events", str(out))
    lines = out.read_text().splitlines()
    assert lines[0] == "customer_id,item_id,weight,timestamp,type"
    assert sorted(line.split(",")[:3] + [line.split(",")[4]] for line in lines[1:]) == [
        ["c1", "i1", "1.0", "click"],
        ["c2", "i2", "4.0", "purchase"],
    ]


def test_a_batch_whose_every_event_is_refused_is_a_400_that_lists_each_one(reporter):
    batch = [event(type="like"), event(customer_id=""), event(ts="yesterday")]
    answer = post(reporter, {"events": batch})
    assert answer.status_code == 400
    body = answer.json()
    assert body["code"] == "no_event_accepted"
    assert body["accepted"] == 0
    assert [r["index"] for r in body["rejected"]] == [0, 1, 2]
    assert body["rejected"][1]["errors"] == {"customer_id": ["May not be empty."]}
    assert "events[0], type" in body["detail"]
    assert Event.objects.count() == 0


def test_an_empty_batch_is_a_400(reporter):
    answer = post(reporter, {"events": []})
    assert answer.status_code == 400
    assert answer.json()["code"] == "invalid"
    assert "empty" in answer.json()["detail"]


def test_the_schema_describes_the_events_answers_as_they_are(client_for):
    schema = client_for("superuser").get("/api/schema/", {"format": "json"}).json()
    operation = schema["paths"]["/api/v1/events/"]["post"]
    body = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert schema["components"]["schemas"][body]["properties"]["events"]["minItems"] == 1
    refused = operation["responses"]["400"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    properties = schema["components"]["schemas"][refused]["properties"]
    assert {"detail", "code", "accepted", "rejected"} <= set(properties)
    assert set(operation["responses"]) >= {"202", "400", "401", "403", "413", "429"}
