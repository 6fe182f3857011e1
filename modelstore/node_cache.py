"""The node cache: bundles from remote storage, kept on this machine by sha256 for memory-mapping.

A bundle is fetched once per node: a per-sha256 ``fcntl`` lock lets one process download while
the others wait, the download goes to a temporary name, is hashed on the way in and only then
renamed to ``<sha256>.joblib``, read-only, with a verification stamp. Files outlive the
process, so a restart finds them. A copy that no longer hashes to its sha256 (a disk fault, a
stray copy under the name) is this node's fault, not the version's: ``fetch_verified`` discards
it and downloads again; only a download that does not hash to the sha256 (the object in storage
is bad) is refused with ``CorruptBundle``.
A process that serves a file holds a shared lock on it (``hold``); eviction, when the cache
holds more than ``HYBRIDREC_BUNDLE_CACHE_BYTES``, removes the least recently fetched files that
no process holds and that are neither an active nor the last good version of their kind.
"""

import fcntl
import hashlib
import logging
import os
import tempfile
import time
from contextlib import contextmanager, suppress
from pathlib import Path

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import DatabaseError

from hybridrec import metrics

from .bundles import CorruptBundle
from .bundles.stamps import ensure_verified, file_identity, record_verified
from .exceptions import StorageUnavailable
from .formatting import one_line

logger = logging.getLogger(__name__)

SUFFIX = ".joblib"
READ_ONLY = 0o444
CHUNK = 8 * 1024 * 1024

# Downloads this process made (a metrics exporter reads it; tests count the log lines too).
downloads = 0


def cache_dir():
    """Return the node's cache folder, created on first use."""
    folder = Path(settings.HYBRIDREC_BUNDLE_CACHE_DIR)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def cached_file(sha256):
    """Return where the bundle with this sha256 lives in the node cache (it may not be there)."""
    return cache_dir() / f"{sha256}{SUFFIX}"


@contextmanager
def _locked(path, operation):
    with open(path, "a+b") as handle:
        fcntl.flock(handle, operation)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def fetch(name, sha256):
    """Return the local path of a stored bundle, downloading it into the node cache once.

    Raise ``StorageUnavailable`` when the storage cannot be read, and ``CorruptBundle`` when
    what it holds does not have the registered sha256 (nothing is kept then).
    """
    target = cached_file(sha256)
    if target.is_file():
        metrics.count_cache_hit()
        return target
    with _locked(cache_dir() / f".{sha256}.lock", fcntl.LOCK_EX):
        if target.is_file():  # another process of this node fetched it while we waited
            metrics.count_cache_hit()
            return target
        _download(name, sha256, target)
    evict(keep={sha256})
    return target


def fetch_verified(name, sha256):
    """Return ``(path, hashed)``: the node's copy of a stored bundle, checked to hold ``sha256``.

    ``hashed`` says whether the copy was hashed now (else a stamp vouched for it). A missing or
    bad local copy is replaced by a new download; raise ``CorruptBundle`` only when the download
    does not have the sha256, and ``StorageUnavailable`` when the storage cannot be read.
    """
    path = fetch(name, sha256)
    try:
        bad = file_identity(path)
        return path, ensure_verified(path, sha256, stamp_dir=cache_dir())
    except FileNotFoundError:
        bad = None
    except CorruptBundle as exc:
        logger.warning("bad node cache copy of %s (%s): downloading it again", sha256, one_line(exc))
    with _locked(cache_dir() / f".{sha256}.lock", fcntl.LOCK_EX):
        try:
            replaced = file_identity(path) != bad  # another process of this node got here first
        except FileNotFoundError:
            replaced = False
        if not replaced:
            path.unlink(missing_ok=True)  # a process serving it keeps its open pages
            _download(name, sha256, path)
            metrics.count_cache_discard()
    return path, ensure_verified(path, sha256, stamp_dir=cache_dir())


def _download(name, sha256, target):
    global downloads
    started = time.perf_counter()
    handle, temporary = tempfile.mkstemp(prefix=f".{sha256}.", suffix=".tmp", dir=target.parent)
    digest = hashlib.sha256()
    size = 0
    try:
        with os.fdopen(handle, "wb") as out:
            try:
                with default_storage.open(name, "rb") as source:
                    while chunk := source.read(CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
                        size += len(chunk)
            except Exception as exc:  # boto3, the network, a missing object: all say the same
                raise StorageUnavailable(
                    f"the bundle {name} could not be fetched from storage: {one_line(exc)}"
                ) from exc
        if digest.hexdigest() != sha256:
            raise CorruptBundle(f"stored file {name} does not have the registered sha256")
        os.chmod(temporary, READ_ONLY)
        os.replace(temporary, target)
        # Hashed on the way in: serving trusts it without reading it again.
        record_verified(target, sha256, stamp_dir=cache_dir(), identity=file_identity(target))
    finally:
        Path(temporary).unlink(missing_ok=True)
    downloads += 1
    metrics.count_download()
    logger.info(
        "bundle downloaded into the node cache: sha256=%s bytes=%d seconds=%.3f",
        sha256,
        size,
        time.perf_counter() - started,
    )


def hold(path):
    """Mark a cached file as in use by this process until the returned descriptor is closed."""
    handle = os.open(path, os.O_RDONLY)
    fcntl.flock(handle, fcntl.LOCK_SH)
    return handle


def _protected():
    """Return the sha256s that must stay: every active version and each kind's last good one."""
    from .models import ModelVersion

    ready = ModelVersion.objects.filter(status=ModelVersion.Status.READY)
    active = set(ready.filter(is_active=True).values_list("sha256", flat=True))
    last_good = set()
    for kind in ready.values_list("kind", flat=True).distinct():
        sha = (
            ready.filter(kind=kind, activated_at__isnull=False, is_active=False)
            .order_by("-activated_at", "-id")
            .values_list("sha256", flat=True)
            .first()
        )
        if sha:
            last_good.add(sha)
    return active | last_good


def evict(keep=()):
    """Remove unused bundles, least recently fetched first, until the cache fits its limit."""
    limit = settings.HYBRIDREC_BUNDLE_CACHE_BYTES
    if not limit:
        return []
    files = sorted(cache_dir().glob(f"*{SUFFIX}"), key=lambda path: path.stat().st_mtime_ns)
    total = sum(path.stat().st_size for path in files)
    if total <= limit:
        return []
    try:
        protected = _protected() | set(keep)
    except DatabaseError:
        logger.warning("node cache over its limit, but the registry is unreachable: nothing evicted")
        return []
    removed = []
    for path in files:
        if total <= limit:
            break
        if path.stem in protected:
            continue
        freed = _remove_unless_held(path)
        if freed is not None:
            total -= freed
            removed.append(path.stem)
    for sha in removed:
        logger.info("bundle evicted from the node cache: sha256=%s", sha)
    return removed


def _remove_unless_held(path):
    """Delete a cached file no process holds; return the bytes freed, or None."""
    with suppress(FileNotFoundError), open(path, "rb") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return None  # a process serves it
        size = os.fstat(handle.fileno()).st_size
        path.unlink()
        return size
    return None
