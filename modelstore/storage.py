"""Where bundle files live: Django's storage API, with a local copy for memory-mapping."""

import hashlib
import os
import shutil
import socket
import tempfile
from contextlib import contextmanager
from pathlib import Path

from django.core.files import File
from django.core.files.storage import FileSystemStorage, default_storage

from . import node_cache
from .bundles.stamps import ensure_verified

BUNDLE_DIR = "bundles"
# Stored bundles are never written again: a served file that changes was changed by mistake.
READ_ONLY = 0o444


def _is_local(storage):
    return isinstance(storage, FileSystemStorage)


STAGING = ".staging-"


def _host_tag():
    """Return a short tag for this machine: a staging folder may be shared by several."""
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


def _staging_prefix():
    """Return the name prefix of this process's staging entries: ``.staging-<host>-<pid>-``."""
    return f"{STAGING}{_host_tag()}-{os.getpid()}-"


def _is_running(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def sweep_staging(folder):
    """Remove the staging entries in ``folder`` left by processes of this machine that are gone.

    A worker killed mid-upload (a timeout, the out-of-memory killer) never reaches its
    ``finally``; the next upload on the machine removes what it left.
    """
    host = _host_tag()
    for entry in folder.glob(f"{STAGING}{host}-*"):
        pid = entry.name[len(STAGING) + len(host) + 1 :].partition("-")[0]
        if not pid.isdigit() or _is_running(int(pid)):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


def staging_dir():
    """Return a folder for temporary bundle files, on the storage's disk when it is local."""
    folder = (
        Path(default_storage.path(BUNDLE_DIR)) if _is_local(default_storage) else Path(tempfile.gettempdir())
    )
    folder.mkdir(parents=True, exist_ok=True)
    sweep_staging(folder)
    return folder


def staging_file(suffix=".joblib"):
    """Return a new, empty temporary file path in ``staging_dir()`` (the caller removes it)."""
    handle, name = tempfile.mkstemp(prefix=_staging_prefix(), suffix=suffix + ".tmp", dir=staging_dir())
    os.close(handle)
    return Path(name)


@contextmanager
def staging_folder():
    """Yield a new private folder in ``staging_dir()``; it is removed with all it holds."""
    folder = Path(tempfile.mkdtemp(prefix=_staging_prefix(), dir=staging_dir()))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def bundle_name(sha256):
    """Return the storage name of a bundle: named by the sha256 of its content."""
    return f"{BUNDLE_DIR}/{sha256}.joblib"


def store(local_path, sha256):
    """Move a finished local file into storage under its hash name; return the name.

    A file already stored under that name is the same content: the new copy is dropped.
    """
    name = bundle_name(sha256)
    local_path = Path(local_path)
    if default_storage.exists(name):
        local_path.unlink(missing_ok=True)
        return name
    if _is_local(default_storage):
        target = Path(default_storage.path(name))
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(local_path, target)  # same disk: atomic, never a half file under the name
        os.chmod(target, READ_ONLY)
        return name
    with open(local_path, "rb") as handle:
        saved = default_storage.save(name, File(handle, name=Path(name).name))
    local_path.unlink(missing_ok=True)
    return saved


def remove(name):
    """Delete a stored file if it exists."""
    if name and default_storage.exists(name):
        default_storage.delete(name)


def local_path(name, sha256):
    """Return a local path to a stored bundle.

    Local storage serves the file where it is. Remote storage is fetched once per node into
    the node cache (``modelstore.node_cache``), hashed on the way in.
    """
    if _is_local(default_storage):
        return Path(default_storage.path(name))
    return node_cache.fetch(name, sha256)


def verified_path(name, sha256, *, stamp_dir):
    """Return ``(path, hashed)``: a local path to a stored bundle checked to hold ``sha256``.

    Raise ``CorruptBundle`` when the stored content is not ``sha256`` and ``FileNotFoundError``
    when a local file is gone. A bad or missing node-cache copy of a remote file is not the
    stored content: it is downloaded again first (``node_cache.fetch_verified``, whose stamps
    live in the node cache's own folder, ``HYBRIDREC_BUNDLE_CACHE_DIR``, as ``stamp_dir`` does).
    """
    if _is_local(default_storage):
        path = Path(default_storage.path(name))
        return path, ensure_verified(path, sha256, stamp_dir=stamp_dir)
    return node_cache.fetch_verified(name, sha256)


def is_remote():
    """Return True when files live in object storage rather than on this machine's disk."""
    return not _is_local(default_storage)


def save_upload(upload, name):
    """Store an uploaded file under ``name`` (a storage name); return the name it got."""
    return default_storage.save(name, upload)


def remove_folder(folder):
    """Delete a stored folder (a storage name) and the files directly in it."""
    if _is_local(default_storage):
        shutil.rmtree(default_storage.path(folder), ignore_errors=True)
        return
    _, files = default_storage.listdir(folder)
    for file_name in files:
        default_storage.delete(f"{folder}/{file_name}")


@contextmanager
def local_copy(name):
    """Yield a local path holding the stored file ``name``: where it is when local, else a private copy."""
    if _is_local(default_storage):
        yield Path(default_storage.path(name))
        return
    with staging_folder() as folder:
        path = folder / Path(name).name
        with open(path, "wb") as out, default_storage.open(name, "rb") as source:
            shutil.copyfileobj(source, out, 8 * 1024 * 1024)
        yield path
