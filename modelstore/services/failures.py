"""How a failure inside a service ends: the row ``failed`` with the reason, errors named for people."""

from __future__ import annotations

import errno
import logging
import traceback
from collections.abc import Iterator
from contextlib import contextmanager

from django.utils import timezone

from ..bundles import BundleError, IncompatibleBundle
from ..exceptions import InsufficientStorage, RegistryError
from ..formatting import one_line
from ..models import ModelVersion

logger = logging.getLogger(__name__)

DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
# What pandas and numpy raise on input they cannot convert (a non-numeric column, a CSV that
# does not parse, a mapping of the wrong shape): the input's fault, refused like a bad bundle.
CONVERSION_ERRORS = (ValueError, TypeError, KeyError, IndexError)


@contextmanager
def storage_errors() -> Iterator[None]:
    """Turn a full disk or quota into ``InsufficientStorage``, letting go of what the error held.

    A traceback keeps every frame's locals alive, memory-mapped arrays of a staged file among
    them; the frames are cleared so that whatever keeps the error (a log handler, an error
    tracker) does not keep the deleted file mapped and its space taken.
    """
    try:
        yield
    except OSError as exc:
        if exc.errno not in DISK_FULL:
            raise
        traceback.clear_frames(exc.__traceback__)
        reason = f"{exc.strerror or 'no space left on device'}"
        raise InsufficientStorage(
            f"the bundle storage is full ({reason}); nothing was stored: free space and try again"
        ) from None


@contextmanager
def conversion_errors(name: str) -> Iterator[None]:
    """Turn a pandas/numpy conversion error on untrusted input into ``IncompatibleBundle``."""
    try:
        yield
    except CONVERSION_ERRORS as exc:
        raise IncompatibleBundle(
            f"{name} could not be converted: {type(exc).__name__}: {one_line(exc)}"
        ) from exc


def described(exc: BaseException) -> str:
    """Return an unforeseen error as one line naming its type."""
    return f"{type(exc).__name__}: {exc}"


def mark_failed(version: ModelVersion, reason: BaseException | str) -> None:
    """Record ``reason`` on the row and mark it ``failed``."""
    version.status = ModelVersion.Status.FAILED
    version.error = str(reason)
    version.status_changed_at = timezone.now()
    version.save(update_fields=["status", "error", "status_changed_at"])


@contextmanager
def failing(version: ModelVersion | None) -> Iterator[None]:
    """Leave ``version`` ``failed`` with the reason when anything inside raises, then re-raise.

    Expected errors (bundle, registry, file system) are recorded as they read; anything else is
    logged and recorded with its type, so no row is left ``building`` or ``verifying``.
    """
    try:
        yield
    except Exception as exc:
        if version is not None and version.pk is not None:
            expected = isinstance(exc, (BundleError, RegistryError, OSError))
            if not expected:
                logger.exception("version %s failed unexpectedly", version.pk)
            mark_failed(version, exc if expected else described(exc))
        raise
