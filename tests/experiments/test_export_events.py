"""manage.py export_events: the documented forms work, and a spreadsheet runs nothing it wrote."""

import csv
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import CommandError, call_command

from recommendations.feedback.models import Event
from recommendations.training.data import read_interactions_csv

pytestmark = pytest.mark.django_db

FORMULA_IDS = ['=HYPERLINK("http://x")', "+1+1", "-2+3", "@SUM(A1)", "\tTAB", "\rCR", "'=quoted"]


def rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_since_and_until_take_a_date_as_the_docs_write_it(tmp_path):
    old = Event.objects.create(type="click", customer_id="old", item_id="i1")
    Event.objects.filter(pk=old.pk).update(received_at=datetime(2026, 10, 31, 23, 0, tzinfo=UTC))
    Event.objects.create(type="click", customer_id="new", item_id="i1")
    out = tmp_path / "events.csv"

    call_command("export_events", str(out), "--since", "2026-11-01")
    assert [row["customer_id"] for row in rows(out)] == ["new"]

    call_command("export_events", str(out), "--until", "2026-11-01T00:00:00")
    assert [row["customer_id"] for row in rows(out)] == ["old"]


def test_a_date_that_does_not_parse_is_a_command_error(tmp_path):
    with pytest.raises(CommandError, match="not an ISO 8601"):
        call_command("export_events", str(tmp_path / "x.csv"), "--since", "last tuesday")


def test_ids_a_spreadsheet_would_run_start_with_a_quote(tmp_path):
    Event.objects.bulk_create(
        [Event(type="purchase", customer_id=value, item_id=value) for value in FORMULA_IDS]
        + [Event(type="click", customer_id="plain", item_id="a=b")]
    )
    out = tmp_path / "events.csv"
    call_command("export_events", str(out))
    written = rows(out)
    for row in written:
        for column in ("customer_id", "item_id"):
            assert not row[column].startswith(("=", "+", "-", "@", "\t", "\r")), row
    assert sorted(row["customer_id"] for row in written) == sorted(
        [f"'{value}" for value in FORMULA_IDS] + ["plain"]
    )
    assert {row["item_id"] for row in written if row["customer_id"] == "plain"} == {"a=b"}


def test_training_reads_the_quoted_ids_back_as_they_were(tmp_path):
    Event.objects.bulk_create(
        [Event(type="purchase", customer_id=f"c{value}", item_id=value) for value in FORMULA_IDS]
        + [Event(type="purchase", customer_id=value, item_id="plain") for value in ("-17850", "@shop")]
    )
    out = tmp_path / "events.csv"
    call_command("export_events", str(out))
    events, _ = read_interactions_csv(out)
    # The reader strips blanks around ids, as it does for any CSV.
    assert sorted(events["item_id"]) == sorted([value.strip() for value in FORMULA_IDS] + ["plain"] * 2)
    assert {"-17850", "@shop"} <= set(events["customer_id"])


def test_the_export_is_ordered_oldest_first_with_the_event_time(tmp_path):
    now = datetime.now(UTC).replace(microsecond=0)
    Event.objects.create(type="click", customer_id="c1", item_id="i1", ts=now - timedelta(hours=1))
    out = tmp_path / "events.csv"
    call_command("export_events", str(out))
    assert datetime.fromisoformat(rows(out)[0]["timestamp"]) == now - timedelta(hours=1)
