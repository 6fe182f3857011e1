"""Upload handling for every upload door: refuse from the headers first, then stream under a limit.

An upload door (the admin's upload page, the admin's training page, the API's upload) decides
from the request's headers alone, before anything reads the body:

1. a client that is not logged in, or lacks the door's permission, is refused (401/403);
2. a body whose ``Content-Length`` passes the limit is refused (413).

Only then are the upload handlers installed and the body parsed (CSRF parses it too, so the
checks come before it). While the body streams, ``SizeLimitUploadHandler`` stops writing a
file as soon as it passes ``HYBRIDREC_MAX_UPLOAD_BYTES`` and removes the part written, and
the door answers 413.
"""

from functools import wraps

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler, SkipFile, load_handler
from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt

# Room for the form's other fields and the multipart framing around a file at the limit.
MULTIPART_ALLOWANCE_BYTES = 64 * 1024


class SizeLimitUploadHandler(FileUploadHandler):
    """Skip a file as soon as more than ``limit_bytes`` of it has arrived.

    Put it first in ``request.upload_handlers``: the handlers after it (memory or temporary
    file) then never see the bytes past the limit, and the part already written is removed.
    The rest of the request is still parsed (at most ``MULTIPART_ALLOWANCE_BYTES``, since the
    door refused longer bodies), so the form can say why the file is missing.
    """

    def __init__(self, request=None, limit_bytes=None):
        super().__init__(request)
        self.limit_bytes = settings.HYBRIDREC_MAX_UPLOAD_BYTES if limit_bytes is None else limit_bytes
        self.refused = {}  # field name -> (file name, bytes seen when refused)

    def new_file(
        self, field_name, file_name, content_type, content_length, charset=None, content_type_extra=None
    ):
        super().new_file(field_name, file_name, content_type, content_length, charset, content_type_extra)
        if content_length is not None and content_length > self.limit_bytes:
            self._refuse(content_length)

    def receive_data_chunk(self, raw_data, start):
        if start + len(raw_data) > self.limit_bytes:
            self._refuse(start + len(raw_data))
        return raw_data

    def file_complete(self, file_size):
        return None  # the handlers after this one build the file

    def _refuse(self, size_bytes):
        self.refused[self.field_name] = (self.file_name, size_bytes)
        raise SkipFile(f"{self.file_name} is over the upload limit of {self.limit_bytes} bytes")


def limited_upload_handlers(request):
    """Return the upload handlers for a request: the size limit first, then the configured ones."""
    return [SizeLimitUploadHandler(request)] + [
        load_handler(path, request) for path in settings.FILE_UPLOAD_HANDLERS
    ]


def upload_refusals(request):
    """Return ``{field name: (file name, bytes seen)}`` for files skipped for their size."""
    refused = {}
    for handler in request.upload_handlers:
        if isinstance(handler, SizeLimitUploadHandler):
            refused.update(handler.refused)
    return refused


# --- refusing from the headers ----------------------------------------------------------------


class UploadRefused(Exception):
    """An upload refused from its headers: ``status`` is 401, 403 or 413, ``code`` says why."""

    def __init__(self, message, *, status, code):
        super().__init__(message)
        self.status = status
        self.code = code


def over_limit_message(subject):
    """Return "<subject> over the upload limit of N bytes (HYBRIDREC_MAX_UPLOAD_BYTES)"."""
    limit = settings.HYBRIDREC_MAX_UPLOAD_BYTES
    return f"{subject} over the upload limit of {limit:,} bytes (HYBRIDREC_MAX_UPLOAD_BYTES)"


def body_limit_bytes():
    """Return the longest request body an upload door reads."""
    return settings.HYBRIDREC_MAX_UPLOAD_BYTES + MULTIPART_ALLOWANCE_BYTES


def check_upload_headers(request, *, user, permission, staff=False):
    """Raise ``UploadRefused`` unless ``user`` may upload and the declared body fits; read no body.

    ``user`` is whoever the door's authentication found (anonymous or None when nobody);
    ``staff`` also asks for an active staff account, as the admin does.
    """
    if user is None or not user.is_authenticated:
        raise UploadRefused("Log in to upload a file.", status=401, code="not_authenticated")
    if not user.has_perm(permission) or (staff and not (user.is_active and user.is_staff)):
        raise UploadRefused(
            f"Uploading needs the {permission} permission.", status=403, code="permission_denied"
        )
    # Django reads no more than Content-Length (none or a bad one reads as an empty body).
    declared = request.META.get("CONTENT_LENGTH") or "0"
    length = int(declared) if declared.isdigit() else 0
    if length > body_limit_bytes():
        raise UploadRefused(
            over_limit_message(f"The request body is {length:,} bytes,") + ".",
            status=413,
            code="too_large",
        )


def admin_upload_door(view, *, permission):
    """Wrap an admin page that takes uploads: refuse a POST from its headers, then stream it limited.

    A refused POST gets a short plain-text 403 or 413 (an anonymous one too: the admin has no
    credentials to ask for); a file refused while streaming makes the page's answer a 413.
    """

    @csrf_exempt  # ``view`` checks CSRF itself, after the checks above and with the handlers set
    @wraps(view)
    def door(request, *args, **kwargs):
        if request.method == "POST":
            try:
                check_upload_headers(request, user=request.user, permission=permission, staff=True)
            except UploadRefused as refusal:
                status = 403 if refusal.status == 401 else refusal.status
                return HttpResponse(str(refusal), status=status, content_type="text/plain; charset=utf-8")
            request.upload_handlers = limited_upload_handlers(request)
        response = view(request, *args, **kwargs)
        if request.method == "POST" and upload_refusals(request):
            response.status_code = 413
        return response

    return door
