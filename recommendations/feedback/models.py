"""One row per thing a customer did with an item: saw it, clicked it, put it in a cart, bought it."""

from django.db import models
from django.db.models.functions import Coalesce
from django.utils import timezone

from hybridrec.limits import MAX_ID_LENGTH, MAX_REQUEST_ID_LENGTH


class Event(models.Model):
    """An event a client reported; attributed to a served answer through ``request_id`` or time."""

    class Type(models.TextChoices):
        IMPRESSION = "impression", "Impression"
        CLICK = "click", "Click"
        ADD_TO_CART = "add_to_cart", "Add to cart"
        PURCHASE = "purchase", "Purchase"

    type = models.CharField(max_length=12, choices=Type.choices)
    customer_id = models.CharField(max_length=MAX_ID_LENGTH)
    item_id = models.CharField(max_length=MAX_ID_LENGTH)
    # NULL, not "": an event without a request_id is attributed by customer and time instead.
    request_id = models.CharField(  # noqa: DJ001
        max_length=MAX_REQUEST_ID_LENGTH,
        null=True,
        blank=True,
        help_text="The request_id of the answer that showed the item.",
    )
    # NULL, not "": only a client's own ids are deduplicated; events without one are all kept.
    event_id = models.CharField(
        max_length=64,
        null=True,
        blank=True,
        unique=True,
        help_text="The client's id for this event: a repeat of it is acknowledged and stored once.",
    )
    ts = models.DateTimeField(
        null=True, blank=True, help_text="When it happened, as the client says (within a window around now)."
    )
    received_at = models.DateTimeField(default=timezone.now, help_text="When the server stored it.")
    # The time attribution reads (the client's ts, else when it was received), stored so it can be indexed.
    at = models.GeneratedField(
        expression=Coalesce("ts", "received_at"), output_field=models.DateTimeField(), db_persist=True
    )

    class Meta:
        ordering = ["-received_at", "-id"]
        indexes = [
            # Attribution: an event names the answer it came from ...
            models.Index(fields=["request_id"], name="feedback_event_request"),
            # ... or is matched by customer and time to what that customer was served.
            models.Index(fields=["customer_id", "ts"], name="feedback_event_customer_ts"),
            # Counting an answer looks up, per item shown and type, the customer's earliest event.
            models.Index(
                fields=["customer_id", "item_id", "type", "at"], name="feedback_event_customer_item"
            ),
            # ... and first whether the customer has any event without a request id in a window.
            models.Index(
                fields=["customer_id", "item_id", "at"],
                condition=models.Q(request_id__isnull=True),
                name="feedback_event_customer_untold",
            ),
            # Results and exports read the events of a period.
            models.Index(fields=["received_at"], name="feedback_event_received"),
        ]

    def __str__(self):
        return f"{self.type} {self.customer_id} → {self.item_id}"
