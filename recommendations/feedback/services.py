"""Store reported events: the good ones in one insert, the bad ones refused with their reasons."""

from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from recommendations.experiments import counting

from .exceptions import BatchTooLarge, FeedbackError, NothingAccepted
from .models import Event
from .validation import check_event


@dataclass
class Recorded:
    """What became of a batch: how many events were stored, and why the others were not."""

    accepted: int
    rejected: list = field(default_factory=list)  # [{"index": i, "errors": {field: [reason]}}]

    def as_json(self):
        return {"accepted": self.accepted, "rejected": self.rejected}


def events_record(*, events):
    """Check every event of a batch and store the acceptable ones in one transaction.

    Return a ``Recorded``; raise ``BatchTooLarge`` past ``HYBRIDREC_EVENTS_MAX_BATCH``,
    ``FeedbackError`` when ``events`` is not a non-empty list and ``NothingAccepted`` when every
    event is refused. When this returns, the accepted events are committed: the caller may say so.
    An event whose ``event_id`` is already stored (or repeated in the batch) is acknowledged and
    stored once. The stored events are then counted for the experiments whose answers showed
    their items (``counting.events_count``).
    """
    if not isinstance(events, list):
        raise FeedbackError('"events" must be a list of event objects.')
    if not events:
        raise FeedbackError('"events" is empty: a batch holds at least one event.')
    limit = settings.HYBRIDREC_EVENTS_MAX_BATCH
    if len(events) > limit:
        raise BatchTooLarge(
            f"A batch holds at most {limit} events (HYBRIDREC_EVENTS_MAX_BATCH); this one has "
            f"{len(events)}. Send them in several requests."
        )
    now = timezone.now()
    max_age = timedelta(seconds=settings.HYBRIDREC_EVENTS_MAX_AGE_SECONDS)
    rows, rejected = [], []
    for index, raw in enumerate(events):
        row, errors = check_event(raw, now=now, max_age=max_age)
        if errors:
            rejected.append({"index": index, "errors": errors})
        else:
            rows.append(row)
    if not rows:
        first = rejected[0]
        field, reasons = next(iter(first["errors"].items()))
        raise NothingAccepted(
            f"No event was accepted: all {len(rejected)} were refused (rejected says why; the first, "
            f"events[{first['index']}], {field}: {reasons[0]})",
            rejected=rejected,
        )
    with transaction.atomic():
        # The event_id's unique constraint, not a read first: two requests racing with the
        # same id store it once.
        Event.objects.bulk_create(rows, batch_size=1000, ignore_conflicts=True)
    # After the commit, so answers counted meanwhile by another transaction are seen.
    counting.events_count(events=rows, now=now)
    return Recorded(accepted=len(rows), rejected=rejected)
