"""The registry API: list and show model versions, and the management doors into ``modelstore.services``.

Model version views: list and show, and the management doors into ``modelstore.services``.

Upload answers 202 Accepted for a newly registered version (verification is queued; poll
GET /api/v1/models/<id>/ for its status) and 200 OK with the existing version when the same
content was registered before. Activate and rollback answer 200 with the now-active version,
verify 202 with the version as it stands. A refused file or registry rule is a 400 with
``{"detail", "code"}``; verifying a version still being built 409 ``version_busy``; a task queue
that cannot be reached 503 ``broker_unavailable`` (a new upload is then not kept); a full disk
507 ``insufficient_storage``. ``GET /api/v1/models/<id>/file/`` streams the stored bundle file.
"""

from django.core.files.storage import default_storage
from django.http import FileResponse
from django.urls import reverse
from django.utils.text import get_valid_filename
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.authentication import TokenAuthentication
from rest_framework.exceptions import NotAuthenticated, PermissionDenied
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from hybridrec.api.errors import ApiError, invalid, not_found
from hybridrec.api.fields import (
    MAX_PAGE_SIZE,
    ErrorAnswer,
    checked,
    id_parameter_schema,
    id_problem,
    single_values,
)
from hybridrec.api.parsers import JSONParser
from hybridrec.api.throttling import ScopedWindowThrottle

from .. import selectors, services
from ..exceptions import AmbiguousLabel, VersionNotFound
from ..upload import (
    UploadRefused,
    check_upload_headers,
    limited_upload_handlers,
    over_limit_message,
    upload_refusals,
)
from .permissions import CanActivate, CanDownload, CanUpload, CanVerify, CanView
from .serializers import (
    LABEL_LENGTH,
    RollbackRequest,
    UploadMatchAnswer,
    UploadRequest,
    VersionAnswer,
    VersionListQuery,
    VersionPage,
)

REFUSED = OpenApiResponse(ErrorAnswer, description="Refused: the body names the field or the reason.")
DENIED = OpenApiResponse(ErrorAnswer, description="Not authenticated (401) or missing the permission (403).")
UNKNOWN = OpenApiResponse(ErrorAnswer, description="No version with this id or label.")
RUNNING = OpenApiResponse(
    ErrorAnswer,
    description="experiment_running: an experiment runs for the kind; the detail says how to stop it.",
)
VERSION = OpenApiParameter(
    "version", id_parameter_schema(LABEL_LENGTH), OpenApiParameter.PATH, description="An id or a label."
)


class VersionPagination(LimitOffsetPagination):
    default_limit = 100
    max_limit = MAX_PAGE_SIZE


def version_or_404(value):
    """Return the version named by an id or label in the URL, or raise the API's 400/404."""
    problem = id_problem(value, LABEL_LENGTH)
    if problem:
        raise invalid("id", problem)
    try:
        return selectors.version_get(value)
    except VersionNotFound as exc:
        raise not_found(str(exc), id=value) from None
    except AmbiguousLabel as exc:
        raise invalid("id", str(exc)) from None


def header_user(request):
    """Return who a request's token or session names, reading only headers and the session."""
    found = TokenAuthentication().authenticate(request)  # a bad token is a 401 here already
    return found[0] if found else request._request.user


def refuse_upload_early(request):
    """Refuse an upload from its headers alone (401, 403, 413), then let its body stream limited.

    DRF authenticates later, and a session's CSRF check parses the body: this runs first.
    """
    try:
        check_upload_headers(request, user=header_user(request), permission=CanUpload.perm)
    except UploadRefused as refusal:
        if refusal.status == status.HTTP_401_UNAUTHORIZED:
            raise NotAuthenticated() from None
        if refusal.status == status.HTTP_403_FORBIDDEN:
            raise PermissionDenied(CanUpload.message) from None
        raise ApiError(str(refusal), code=refusal.code, status_code=refusal.status) from None
    request._request.upload_handlers = limited_upload_handlers(request._request)


def too_large(request):
    """Return the 413 for a file that passed the limit while it streamed."""
    (name, _size), *_ = upload_refusals(request).values()
    return ApiError(
        over_limit_message(f"{name[:200]!r} is"),
        code="too_large",
        status_code=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
    )


def answer(version, status_code=status.HTTP_200_OK):
    version.refresh_from_db()
    location = reverse("api:model-detail", args=[version.pk])
    return Response(selectors.version_as_dict(version), status=status_code, headers={"Location": location})


class VersionListView(APIView):
    """List versions (GET) or upload a bundle as a new version (POST)."""

    throttle_classes = [ScopedWindowThrottle]
    throttle_scope = "models"
    parser_classes = [MultiPartParser, FormParser]

    def get_permissions(self):
        if self.request.method == "POST":
            return [CanUpload()]
        return [CanView()]

    def initial(self, request, *args, **kwargs):
        if request.method == "POST":
            refuse_upload_early(request)
        super().initial(request, *args, **kwargs)

    @extend_schema(
        operation_id="v1_models_list",
        parameters=[VersionListQuery],
        responses={200: VersionPage, 400: REFUSED, 401: DENIED, 403: DENIED},
        summary="List versions, latest first",
    )
    def get(self, request):
        query = checked(VersionListQuery, single_values(request.query_params, VersionListQuery().fields))
        versions = selectors.version_list(kind=query.get("kind"))
        paginator = VersionPagination()
        page = paginator.paginate_queryset(versions, request, view=self)
        return paginator.get_paginated_response([selectors.version_as_dict(version) for version in page])

    @extend_schema(
        summary="Upload a bundle as a new version",
        request={"multipart/form-data": UploadRequest},
        responses={
            202: OpenApiResponse(VersionAnswer, description="Registered; verification queued."),
            200: OpenApiResponse(
                UploadMatchAnswer,
                description="The same content was already registered: that version, unchanged.",
            ),
            400: REFUSED,
            401: DENIED,
            403: DENIED,
            413: OpenApiResponse(ErrorAnswer, description="The file is over HYBRIDREC_MAX_UPLOAD_BYTES."),
        },
    )
    def post(self, request):
        data = request.data
        if upload_refusals(request):
            raise too_large(request)
        body = checked(UploadRequest, data)
        activate = body["activate"]
        if activate and not request.user.has_perm(CanActivate.perm):
            raise PermissionDenied(CanActivate.message)
        registered = services.version_upload(
            uploaded_file=body["file"],
            kind=body.get("kind") or None,
            label=body.get("label", ""),
            notes=body.get("notes", ""),
            user=request.user,
            verify=services.QUEUED,
            activate=activate,
        )
        if registered.created:
            return answer(registered.version, status.HTTP_202_ACCEPTED)
        response = answer(registered.version)
        unapplied = selectors.version_unapplied_options(
            registered.version, label=body.get("label", ""), notes=body.get("notes", "")
        )
        if unapplied:
            response.data["not_applied"] = unapplied
        return response


class VersionDetailView(APIView):
    """One version, by id or label."""

    throttle_classes = [ScopedWindowThrottle]
    throttle_scope = "models"
    permission_classes = [CanView]

    @extend_schema(
        parameters=[VERSION],
        responses={200: VersionAnswer, 400: REFUSED, 401: DENIED, 403: DENIED, 404: UNKNOWN},
    )
    def get(self, request, version):
        return Response(selectors.version_as_dict(version_or_404(version)))


class ActivateView(APIView):
    """Make a ready version the active one of its kind."""

    throttle_classes = [ScopedWindowThrottle]
    throttle_scope = "models"
    permission_classes = [CanActivate]

    @extend_schema(
        request=None,
        parameters=[VERSION],
        responses={200: VersionAnswer, 400: REFUSED, 401: DENIED, 403: DENIED, 404: UNKNOWN, 409: RUNNING},
    )
    def post(self, request, version):
        target = version_or_404(version)
        services.version_activate(version=target, user=request.user)
        return answer(target)


class VerifyView(APIView):
    """Queue a deep verification of a version."""

    throttle_classes = [ScopedWindowThrottle]
    throttle_scope = "models"
    permission_classes = [CanVerify]

    @extend_schema(
        request=None,
        parameters=[VERSION],
        responses={202: VersionAnswer, 400: REFUSED, 401: DENIED, 403: DENIED, 404: UNKNOWN},
    )
    def post(self, request, version):
        target = version_or_404(version)
        services.version_queue_verify(version=target, user=request.user)
        return answer(target, status.HTTP_202_ACCEPTED)


class RollbackView(APIView):
    """Re-activate the version that was active before the current one of a kind."""

    throttle_classes = [ScopedWindowThrottle]
    throttle_scope = "models"
    permission_classes = [CanActivate]
    parser_classes = [JSONParser]

    @extend_schema(
        request=RollbackRequest,
        responses={200: VersionAnswer, 400: REFUSED, 401: DENIED, 403: DENIED, 409: RUNNING},
    )
    def post(self, request):
        body = checked(RollbackRequest, request.data)
        event = services.version_rollback(kind=body["kind"], user=request.user)
        return answer(event.to_version)


class VersionFileView(APIView):
    """Stream a version's stored bundle file (as registered: converted and, maybe, compressed)."""

    throttle_classes = [ScopedWindowThrottle]
    throttle_scope = "models"
    permission_classes = [CanDownload]

    @extend_schema(
        responses={
            (200, "application/octet-stream"): OpenApiResponse(
                OpenApiTypes.BINARY,
                description="The bundle file, as an attachment named after the label; its sha256 is "
                "the version's `sha256`.",
            ),
            400: REFUSED,
            401: DENIED,
            403: DENIED,
            404: UNKNOWN,
        },
    )
    def get(self, request, version):
        target = version_or_404(version)
        if not target.file or not default_storage.exists(target.file.name):
            raise not_found(f"version {target.label} has no stored file", id=str(target.pk))
        name = get_valid_filename(f"{target.label}.joblib") or f"version-{target.pk}.joblib"
        response = FileResponse(
            default_storage.open(target.file.name, "rb"), as_attachment=True, filename=name
        )
        response["X-Content-SHA256"] = target.sha256
        return response
