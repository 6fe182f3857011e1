"""The events body: JSON, refused with a 413 past HYBRIDREC_EVENTS_MAX_BODY_BYTES before it is parsed."""

import io

from django.conf import settings
from rest_framework import status

from hybridrec.api.errors import ApiError
from hybridrec.api.parsers import JSONParser


def body_too_large(limit):
    return ApiError(
        f"The body is over {limit} bytes (HYBRIDREC_EVENTS_MAX_BODY_BYTES); send fewer events per request.",
        code="too_large",
        status_code=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
    )


class BoundedJSONParser(JSONParser):
    """Read at most the limit (a chunked body has no Content-Length to refuse early), then parse."""

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.HYBRIDREC_EVENTS_MAX_BODY_BYTES
        body = stream.read(limit + 1) if stream is not None else b""
        if len(body) > limit:
            raise body_too_large(limit)
        return super().parse(io.BytesIO(body), media_type, parser_context)
