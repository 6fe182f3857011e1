"""Reads of stored events: what retraining takes."""

from .models import Event

# What each type weighs as an interaction when events become training data.
TRAINING_WEIGHTS = {"click": 1.0, "add_to_cart": 2.0, "purchase": 4.0}


def events_for_training(*, since=None, until=None, types=("click", "add_to_cart", "purchase")):
    """Return the events of ``types`` received in [since, until) as a queryset, oldest first."""
    events = Event.objects.filter(type__in=types)
    if since is not None:
        events = events.filter(received_at__gte=since)
    if until is not None:
        events = events.filter(received_at__lt=until)
    return events.order_by("received_at", "id")
