"""The events API's shapes, for the OpenAPI schema (checking is ``feedback.validation``, for speed)."""

from rest_framework import serializers

from hybridrec.api.fields import ErrorAnswer, IdField
from hybridrec.limits import MAX_REQUEST_ID_LENGTH

from ..models import Event


class EventIn(serializers.Serializer):
    type = serializers.ChoiceField(choices=Event.Type.choices)
    customer_id = IdField()
    item_id = IdField()
    request_id = serializers.CharField(
        required=False,
        allow_null=True,
        max_length=MAX_REQUEST_ID_LENGTH,
        help_text="The request_id of the recommendation answer that showed the item, when known.",
    )
    event_id = serializers.CharField(
        required=False,
        allow_null=True,
        max_length=MAX_REQUEST_ID_LENGTH,
        help_text="The client's own id for this event (e.g. a UUID): a repeat is acknowledged and stored once.",
    )
    ts = serializers.DateTimeField(
        required=False,
        allow_null=True,
        help_text="When it happened (ISO 8601; no zone means UTC); at most HYBRIDREC_EVENTS_MAX_AGE_SECONDS "
        "old and 5 minutes ahead. Default: when the server stored it.",
    )


class EventsRequest(serializers.Serializer):
    events = serializers.ListField(
        child=EventIn(),
        min_length=1,
        help_text="1 to HYBRIDREC_EVENTS_MAX_BATCH events; each is checked on its own.",
    )


class Rejection(serializers.Serializer):
    index = serializers.IntegerField(help_text="Position of the refused event in the batch, from 0.")
    errors = serializers.DictField(  # type: ignore[assignment]  # a declared field, popped by the metaclass
        child=serializers.ListField(child=serializers.CharField()), help_text="Reasons by field."
    )


class EventsAnswer(serializers.Serializer):
    accepted = serializers.IntegerField(help_text="Events stored (committed) by this request.")
    rejected = Rejection(many=True)


class EventsRefused(ErrorAnswer):
    accepted = serializers.IntegerField(
        required=False, min_value=0, max_value=0, help_text="With no_event_accepted: 0, nothing was stored."
    )
    rejected = Rejection(
        many=True, required=False, help_text="With no_event_accepted: every event's reasons."
    )
