"""POST /api/v1/events/ under attack: each event is checked to what the database can store.

Every hostile event sits between two good ones; the good ones must be stored and the bad one
refused with its reason, never a 500 that loses the batch. Run on PostgreSQL too (DATABASE_URL):
it refuses what SQLite takes (offsets past ±15:59, NUL and lone surrogates in text).
"""

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from django.utils import timezone as django_timezone

from recommendations.feedback.models import Event

pytestmark = pytest.mark.django_db

URL = "/api/v1/events/"


def event(**fields):
    return {"type": "click", "customer_id": "c1", "item_id": "i1", **fields}


def post_text(client, text):
    return client.post(URL, text, content_type="application/json")


def sandwiched(client, hostile):
    """Post [good, hostile, good]; return the answer's JSON after checking the good ones are stored."""
    answer = post_text(
        client, json.dumps({"events": [event(customer_id="good-0"), hostile, event(customer_id="good-1")]})
    )
    assert answer.status_code == 202, answer.content[:500]
    body = answer.json()
    assert set(
        Event.objects.filter(customer_id__startswith="good-").values_list("customer_id", flat=True)
    ) == {
        "good-0",
        "good-1",
    }
    assert body["accepted"] == Event.objects.count()
    return body


def at(offset_minutes, when=None):
    when = when or django_timezone.now().replace(microsecond=0)
    return when.astimezone(timezone(timedelta(minutes=offset_minutes)))


@pytest.mark.parametrize("offset_minutes", [16 * 60, -(16 * 60), 23 * 60 + 59, -(23 * 60 + 59), 0])
def test_any_offset_python_reads_is_stored_as_the_same_instant(reporter, offset_minutes):
    moment = django_timezone.now().replace(microsecond=0) - timedelta(minutes=1)
    body = sandwiched(reporter, event(customer_id="zoned", ts=at(offset_minutes, moment).isoformat()))
    assert body == {"accepted": 3, "rejected": []}
    assert Event.objects.get(customer_id="zoned").ts == moment


@pytest.mark.parametrize(
    "ts",
    [
        "0001-01-01T00:00:00+16:00",  # before year 1 in UTC
        "0001-01-01T00:00:00+00:01",
        "9999-12-31T23:59:59-23:59",  # after year 9999 in UTC
        "9999-12-31T23:59:59.999999-00:01",
    ],
)
def test_a_time_outside_the_years_1_to_9999_in_utc_is_refused(reporter, settings, ts):
    settings.HYBRIDREC_EVENTS_MAX_AGE_SECONDS = 10**12  # so that only the range can refuse it
    body = sandwiched(reporter, event(customer_id="edge", ts=ts))
    assert [r["index"] for r in body["rejected"]] == [1]
    assert "ts" in body["rejected"][0]["errors"]
    assert not Event.objects.filter(customer_id="edge").exists()


@pytest.mark.parametrize("ts", ["0001-01-01T00:00:00Z", "0001-01-01T00:00:00-16:00"])
def test_year_one_is_stored_when_the_age_limit_allows_it(reporter, settings, ts):
    settings.HYBRIDREC_EVENTS_MAX_AGE_SECONDS = 10**12
    sandwiched(reporter, event(customer_id="ancient", ts=ts))
    stored = Event.objects.get(customer_id="ancient").ts
    assert stored == datetime.fromisoformat(ts)


def test_an_age_limit_past_year_one_does_not_break_the_check(reporter, settings):
    settings.HYBRIDREC_EVENTS_MAX_AGE_SECONDS = 999_999_999 * 86_400
    sandwiched(reporter, event(customer_id="now", ts=django_timezone.now().isoformat()))
    assert Event.objects.filter(customer_id="now").count() == 1


def test_nine_fraction_digits_are_kept_to_the_microsecond(reporter):
    moment = django_timezone.now().replace(microsecond=0) - timedelta(minutes=1)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S") + ".123456789Z"
    sandwiched(reporter, event(customer_id="fine", ts=text))
    assert Event.objects.get(customer_id="fine").ts == moment.replace(microsecond=123456, tzinfo=UTC)


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_not_json_and_the_body_is_a_400(reporter, literal):
    text = json.dumps({"events": [event(ts="LITERAL")]}).replace('"LITERAL"', literal)
    answer = post_text(reporter, text)
    assert answer.status_code == 400
    assert answer.json()["code"] == "parse_error"
    assert Event.objects.count() == 0


def test_an_integer_too_long_to_read_is_a_400(reporter):
    text = json.dumps({"events": [event(customer_id="LITERAL")]}).replace('"LITERAL"', "9" * 5000)
    answer = post_text(reporter, text)
    assert answer.status_code == 400
    assert answer.json()["code"] == "parse_error"


@pytest.mark.parametrize("field", ["type", "customer_id", "item_id", "request_id", "ts"])
@pytest.mark.parametrize("json_value", ["1e999", "-1e999", "1" + "0" * 400, "1.5", "true", "[]", "{}", '""'])
def test_a_field_of_the_wrong_kind_refuses_that_event_only(reporter, field, json_value):
    """Numbers too large for a float (1e999 reads as infinity), huge integers, other JSON kinds."""
    hostile = json.dumps({**event(request_id="r-1"), field: "HOSTILE"}).replace('"HOSTILE"', json_value)
    good = [json.dumps(event(customer_id=f"good-{n}")) for n in range(2)]
    answer = post_text(reporter, f'{{"events": [{good[0]}, {hostile}, {good[1]}]}}')
    assert answer.status_code == 202, answer.content[:500]
    body = answer.json()
    assert body["accepted"] == 2
    assert [r["index"] for r in body["rejected"]] == [1]
    assert list(body["rejected"][0]["errors"]) == [field]
    assert sorted(Event.objects.values_list("customer_id", flat=True)) == ["good-0", "good-1"]


@pytest.mark.parametrize("field", ["type", "customer_id", "item_id", "request_id", "ts"])
@pytest.mark.parametrize("bad", ["\x00", "\ud800", "\udfff", "a\ud83d", "\x00\ud800"])
def test_nul_bytes_and_lone_surrogates_refuse_that_event_only(reporter, field, bad):
    good = {"type": "click", "customer_id": "odd", "item_id": "i1", "request_id": "r-1", "ts": ""}
    good["ts"] = django_timezone.now().isoformat()
    value = good[field] + bad
    body = sandwiched(reporter, {**good, field: value})
    assert [r["index"] for r in body["rejected"]] == [1]
    assert list(body["rejected"][0]["errors"]) == [field]
    assert Event.objects.count() == 2


@pytest.mark.parametrize("name", ["\ud800", "colour\x00", "x" * 10_000])
def test_an_unknown_field_with_any_name_refuses_that_event_only(reporter, name):
    body = sandwiched(reporter, event(customer_id="odd", **{name: 1}))
    assert [r["index"] for r in body["rejected"]] == [1]
    reason = body["rejected"][0]["errors"]["non_field_errors"][0]
    assert "Unknown field" in reason
    assert len(reason) < 500
    assert Event.objects.count() == 2


@pytest.mark.parametrize("name", ["\ud800", "x\x00"])
def test_an_unknown_top_level_field_with_any_name_is_a_400(reporter, name):
    answer = post_text(reporter, json.dumps({"events": [event()], name: 1}))
    assert answer.status_code == 400
    assert answer.json()["code"] == "invalid"
    assert Event.objects.count() == 0


def test_ids_of_the_longest_length_in_any_script_are_stored(reporter):
    longest = {"customer_id": "顧" * 200, "item_id": "😀" * 200, "request_id": "é" * 64}
    body = sandwiched(reporter, event(**longest))
    assert body["accepted"] == 3
    assert Event.objects.filter(**longest).count() == 1
