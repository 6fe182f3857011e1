"""Upload handling for the admin's upload view: stop writing a file once it passes the limit."""

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler, SkipFile, load_handler


class SizeLimitUploadHandler(FileUploadHandler):
    """Skip a file as soon as more than ``limit_bytes`` of it has arrived.

    Put it first in ``request.upload_handlers``: the handlers after it (memory or temporary
    file) then never see the bytes past the limit, and the part already written is removed.
    The rest of the request is still parsed, so the form can say why the file is missing.
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
