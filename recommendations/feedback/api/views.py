"""``POST /api/v1/events/``: parse, hand the batch to ``events_record``, answer 202 once it is stored."""

from django.conf import settings
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from hybridrec.api.errors import ApiError
from hybridrec.api.fields import ErrorAnswer
from hybridrec.api.throttling import ScopedWindowThrottle
from modelstore.api.permissions import HasModelPermission

from ..exceptions import FeedbackError
from ..services import events_record
from ..validation import shown
from .parsers import BoundedJSONParser, body_too_large
from .serializers import EventsAnswer, EventsRefused, EventsRequest


class CanReportEvents(HasModelPermission):
    perm = "feedback.add_event"
    message = "Reporting events needs the feedback.add_event permission."


class EventsView(APIView):
    """Events a client reports about what it showed and what customers did."""

    permission_classes = [CanReportEvents]
    throttle_classes = [ScopedWindowThrottle]
    throttle_scope = "events"
    parser_classes = [BoundedJSONParser]

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        # After authentication and throttling: refuse a declared oversize body before reading it.
        limit = settings.HYBRIDREC_EVENTS_MAX_BODY_BYTES
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = 0
        if declared > limit:
            raise body_too_large(limit)

    @extend_schema(
        request=EventsRequest,
        responses={
            202: EventsAnswer,
            400: OpenApiResponse(
                EventsRefused,
                description="No event was accepted (code no_event_accepted: rejected says why, "
                'event by event), or the body is not {"events": [...]} with at least one event '
                "(code invalid or parse_error).",
            ),
            403: OpenApiResponse(ErrorAnswer, description="The user lacks feedback.add_event."),
            413: OpenApiResponse(
                ErrorAnswer,
                description="More than HYBRIDREC_EVENTS_MAX_BATCH events, or a body over "
                "HYBRIDREC_EVENTS_MAX_BODY_BYTES.",
            ),
        },
        description=(
            "Store a batch of events. Each event is checked on its own: the acceptable ones are "
            "stored (committed before the answer), the others listed in rejected with their "
            "reasons by field. 202 means the accepted events are stored; when every event is "
            "refused the answer is a 400 with the same rejected list and nothing is stored."
        ),
    )
    def post(self, request):
        body = request.data
        if not isinstance(body, dict) or "events" not in body:
            raise ApiError('The body must be a JSON object {"events": [...]}.', code="invalid")
        extra = set(body) - {"events"}
        if extra:
            raise ApiError(
                f"Unknown field(s) {', '.join(sorted(shown(name) for name in extra)[:5])}; "
                'the body is {"events": [...]}.',
                code="invalid",
            )
        try:
            recorded = events_record(events=body["events"])
        except FeedbackError as exc:
            raise ApiError(str(exc), code=exc.code, status_code=exc.http_status, **exc.extra) from None
        return Response(recorded.as_json(), status=202)
