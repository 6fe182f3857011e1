"""Request ids: every response carries ``X-Request-ID`` and every log line of the request names it."""

import contextvars
import logging
import re
import uuid

from django.conf import settings
from django.core.signals import request_finished
from django.dispatch import receiver

HEADER = "X-Request-ID"
# An id a proxy or client sent is kept when it is short and plain; anything else is replaced.
SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")

current_request_id = contextvars.ContextVar("request_id", default="-")


class RequestIdMiddleware:
    """Take a sane incoming ``X-Request-ID`` or make one; log with it; return it on the response."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get(HEADER, "")
        request_id = incoming if SANE_ID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id
        # Left set until the request is finished: Django logs a 4xx/5xx answer after the
        # middleware has returned, and that line should name the request too.
        current_request_id.set(request_id)
        if settings.SENTRY_DSN:
            import sentry_sdk

            sentry_sdk.set_tag("request_id", request_id)  # the event names the request, like the log
        response = self.get_response(request)
        response[HEADER] = request_id
        return response


@receiver(request_finished)
def forget_request_id(sender=None, **kwargs):
    """Stop naming the finished request in log lines of this thread."""
    current_request_id.set("-")


class RequestIdFilter(logging.Filter):
    """Put the current request's id on every log record as ``request_id`` (``-`` outside requests)."""

    def filter(self, record):
        record.request_id = current_request_id.get()
        return True
