"""One JSON error shape for the whole API: ``{"detail", "code", ...}``, never an HTML page.

Validation errors also carry ``"errors": {field: [messages]}`` and name the fields in
``detail``. Domain errors become their HTTP answers here: ``ModelUnavailable`` → 503,
``UnknownItem`` → 404, ``BundleError`` and ``RegistryError`` → 400 (or the status a registry
error names: ``VersionBusy`` 409, ``BrokerUnavailable`` 503, ``InsufficientStorage`` 507), a
database that cannot be reached (``OperationalError``, ``InterfaceError``) → 503
``database_unavailable``.
"""

import errno
import logging
import sys

from django.core.exceptions import DisallowedHost, RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.db import InterfaceError, OperationalError
from django.http import HttpResponse, JsonResponse
from django.views.defaults import bad_request, page_not_found, permission_denied, server_error
from rest_framework import exceptions, status
from rest_framework.views import exception_handler as drf_exception_handler

from hybridrec.dbstate import NO_TABLES, has_no_tables
from modelstore.bundles import BundleError
from modelstore.exceptions import RegistryError

logger = logging.getLogger(__name__)


class ApiError(exceptions.APIException):
    """An API error with a code and extra body fields (``kind``, ``item_id``, ``id``...)."""

    def __init__(self, detail, *, code, status_code=status.HTTP_400_BAD_REQUEST, **extra):
        super().__init__(detail, code)
        self.status_code = status_code
        self.code = code
        self.extra = extra


def not_found(detail, **extra):
    return ApiError(detail, code="not_found", status_code=status.HTTP_404_NOT_FOUND, **extra)


def invalid(field, message):
    """Return a 400 for one bad field, shaped like any other validation error."""
    return exceptions.ValidationError({field: [message]})


def _domain_error(exc):
    # Imported here so that the registry's API can use this module without importing serving.
    from recommendations.engines import UnknownItem
    from recommendations.serving import ModelUnavailable

    if isinstance(exc, ModelUnavailable):
        return ApiError(
            str(exc), code=exc.code, status_code=status.HTTP_503_SERVICE_UNAVAILABLE, kind=exc.kind
        )
    if isinstance(exc, UnknownItem):
        return not_found(str(exc), item_id=exc.item_id)
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        # The request body could not even be spooled to a temporary file.
        return ApiError(
            f"the server's disk is full ({exc.strerror}); nothing was stored",
            code="insufficient_storage",
            status_code=status.HTTP_507_INSUFFICIENT_STORAGE,
        )
    if isinstance(exc, (BundleError, RegistryError)):
        # Most registry refusals are the request's fault (400); some name their own status:
        # a busy version 409, an unreachable task queue 503, a full disk 507.
        return ApiError(str(exc), code=exc.code, status_code=getattr(exc, "http_status", 400))
    if _database_unreachable(exc):
        logger.warning("the database cannot be reached: %s", exc)
        return ApiError(
            "the database cannot be reached; try again shortly",
            code="database_unavailable",
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        )
    return exc


def _database_unreachable(exc):
    """Return True for a database that cannot be reached, not for a query that is wrong.

    SQLite reports a missing table or column with the same class as a lost connection; that is
    a bug or a missing migration (a 500, logged), not an outage.
    """
    if isinstance(exc, InterfaceError):
        return True
    return isinstance(exc, OperationalError) and not str(exc).startswith(("no such table", "no such column"))


def _flatten(errors, prefix=""):
    """Yield ``(field path, message)`` from DRF's nested error detail."""
    if isinstance(errors, dict):
        for key, value in errors.items():
            name = key if not prefix else f"{prefix}[{key}]" if isinstance(key, int) else f"{prefix}.{key}"
            yield from _flatten(value, str(name))
    elif isinstance(errors, list):
        for value in errors:
            yield from _flatten(value, prefix)
    else:
        yield prefix, str(errors)


BEARER_HINT = (
    " The Authorization header says “Bearer …”, which this API does not take: "
    "send “Authorization: Token <key>” (manage.py drf_create_token USER makes a key)."
)


def _bearer_hint(exc, context):
    """Add a hint to a 401 whose request sent a Bearer token instead of a DRF ``Token``."""
    request = context.get("request")
    header = request.META.get("HTTP_AUTHORIZATION", "") if request is not None else ""
    if isinstance(exc, exceptions.NotAuthenticated) and header.split(" ", 1)[0].lower() == "bearer":
        # Keep the exception: DRF has set its status and WWW-Authenticate header on it.
        exc.detail = exceptions.ErrorDetail(f"{exc.detail}{BEARER_HINT}", code=exc.detail.code)
    return exc


def exception_handler(exc, context):
    """Return DRF's answer for ``exc`` reshaped into the API's error body; None lets a bug be a 500."""
    exc = _bearer_hint(_domain_error(exc), context)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        detail = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        messages = [
            f"{field}: {message}" if field and field != "non_field_errors" else message
            for field, message in _flatten(detail)
        ]
        response.data = {"detail": "; ".join(messages), "code": "invalid", "errors": detail}
        return response
    data = response.data if isinstance(response.data, dict) else {"detail": response.data}
    codes = exc.get_codes() if isinstance(exc, exceptions.APIException) else None
    data.setdefault("code", codes if isinstance(codes, str) else "error")
    data.update(getattr(exc, "extra", {}))
    response.data = data
    return response


def _wants_json(request):
    return request.path.startswith("/api/")


def bad_request_view(request, exception=None):
    """Answer what Django refuses before a view (bad Host, a body over its limits) under /api/ with JSON.

    A body over DATA_UPLOAD_MAX_MEMORY_SIZE is a 413; a Host not in ALLOWED_HOSTS and any other
    suspicious request a 400.
    """
    if not _wants_json(request):
        return bad_request(request, exception)
    if isinstance(exception, RequestDataTooBig):
        return JsonResponse(
            {
                "detail": "The request body is over the size limit (DATA_UPLOAD_MAX_MEMORY_SIZE).",
                "code": "too_large",
            },
            status=413,
        )
    if isinstance(exception, TooManyFieldsSent | TooManyFilesSent):
        return JsonResponse(
            {"detail": "The request has too many fields.", "code": "too_many_fields"}, status=400
        )
    if isinstance(exception, DisallowedHost):
        return JsonResponse(
            {"detail": "The Host header names no host this service answers for.", "code": "bad_host"},
            status=400,
        )
    return JsonResponse({"detail": "Bad request.", "code": "bad_request"}, status=400)


def permission_denied_view(request, exception=None):
    """Answer a refusal raised outside DRF under /api/ with JSON, anything else with Django's page."""
    if _wants_json(request):
        return JsonResponse({"detail": "You may not do this.", "code": "permission_denied"}, status=403)
    return permission_denied(request, exception)


def not_found_view(request, exception=None):
    """Answer an unknown URL under /api/ with JSON, anything else with Django's page."""
    if _wants_json(request):
        return JsonResponse(
            {"detail": f"no API endpoint at {request.path[:200]}", "code": "not_found"}, status=404
        )
    return page_not_found(request, exception)


def server_error_view(request):
    """Answer a server error under /api/ with JSON, anything else with Django's page.

    A database that was never migrated is not a bug in the request: 503 with that reason.
    """
    if has_no_tables(sys.exc_info()[1]):
        if _wants_json(request):
            return JsonResponse({"detail": NO_TABLES, "code": "database_not_migrated"}, status=503)
        return HttpResponse(NO_TABLES, status=503, content_type="text/plain; charset=utf-8")
    if _wants_json(request):
        return JsonResponse({"detail": "internal server error", "code": "server_error"}, status=500)
    return server_error(request)
