"""Write stored events as a generic interactions CSV that ``train_models`` reads."""

import csv
from datetime import UTC, datetime

from django.core.management.base import BaseCommand, CommandError

from recommendations.feedback.selectors import TRAINING_WEIGHTS, events_for_training
from recommendations.feedback.spreadsheet import quote


def _when(text):
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise CommandError(f"{text!r} is not an ISO 8601 date or time (e.g. 2026-11-01).") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


class Command(BaseCommand):
    help = (
        "Write clicks, add-to-carts and purchases as customer_id,item_id,weight,timestamp,type "
        "(weights: click 1, add_to_cart 2, purchase 4); train_models --interactions FILE reads it. "
        "Ids a spreadsheet would run as formulas (starting with = + - @, a tab or a carriage return) "
        "are written with a leading single quote."
    )

    def add_arguments(self, parser):
        parser.add_argument("out", help="CSV file to write")
        parser.add_argument("--since", type=_when, help="events received at or after (ISO 8601)")
        parser.add_argument("--until", type=_when, help="events received before (ISO 8601)")
        parser.add_argument(
            "--types",
            default="click,add_to_cart,purchase",
            help="comma-separated event types (default: click,add_to_cart,purchase)",
        )

    def handle(self, *args, out, since, until, types, **options):
        wanted = tuple(t.strip() for t in types.split(",") if t.strip())
        unknown = sorted(set(wanted) - set(TRAINING_WEIGHTS) - {"impression"})
        if unknown:
            raise CommandError(
                f"unknown event type(s) {', '.join(unknown)}; use {', '.join(TRAINING_WEIGHTS)}"
            )
        events = events_for_training(since=since, until=until, types=wanted)
        count = 0
        with open(out, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["customer_id", "item_id", "weight", "timestamp", "type"])
            for row in events.values_list("customer_id", "item_id", "type", "ts", "received_at").iterator(
                chunk_size=10_000
            ):
                customer_id, item_id, kind, ts, received_at = row
                weight = TRAINING_WEIGHTS.get(kind, 0.5)
                writer.writerow(
                    [quote(customer_id), quote(item_id), weight, (ts or received_at).isoformat(), kind]
                )
                count += 1
        self.stdout.write(f"wrote {count:,} events to {out}")
