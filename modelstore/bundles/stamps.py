"""Make sure a bundle file holds the content the registry verified, hashing it as rarely as possible.

Hashing a seed-scale bundle takes ~0.7 s, so a process does not re-hash on every start.
After a successful hash it writes a small JSON stamp into ``HYBRIDREC_BUNDLE_CACHE_DIR/verified/``
recording the file's identity (real path, size, mtime, ctime, device and inode) and its sha256.
A later load that finds a stamp with the same identity trusts it; any change to the file
(rewritten, touched, replaced, resized) changes the identity and the file is hashed again,
then refused when the hash differs. When several workers of one machine load a new version at
once, one hashes while the others wait on a lock next to the stamp and then read its stamp.

Verification hashes the whole file too, so it leaves a stamp behind (``record_verified``): a
version verified on this machine opens by mmap at its first activation instead of being read
and hashed again (at 10 M customers, seconds of a swap).
"""

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path

from .exceptions import CorruptBundle
from .format import file_sha256

logger = logging.getLogger(__name__)

STAMP_FOLDER = "verified"


def file_identity(path):
    """Return what identifies one state of a file on disk: a dict of plain values."""
    real = os.path.realpath(path)
    stat = os.stat(real)
    return {
        "path": real,
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        # ctime cannot be set back by the file's owner, so a rewrite whose mtime was restored
        # is still noticed.
        "ctime_ns": stat.st_ctime_ns,
        "device": stat.st_dev,
        "inode": stat.st_ino,
    }


def stamp_path(stamp_dir, path, sha256):
    """Return the stamp file for ``path`` holding content ``sha256``."""
    where = hashlib.sha256(os.path.realpath(path).encode()).hexdigest()[:16]
    return Path(stamp_dir) / STAMP_FOLDER / f"{sha256}.{where}.json"


def _read_stamp(stamp):
    try:
        return json.loads(stamp.read_text())
    except (OSError, ValueError):
        return None


def _write_stamp(stamp, document):
    """Write a stamp atomically; a folder we cannot write only costs a re-hash next time."""
    try:
        stamp.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=".stamp-", suffix=".tmp", dir=stamp.parent)
        with os.fdopen(handle, "w") as out:
            json.dump(document, out)
        os.replace(temporary, stamp)
    except OSError as exc:
        logger.warning("cannot write verification stamp %s: %s", stamp, exc)


@contextlib.contextmanager
def _exclusive(stamp):
    """Hold an exclusive lock beside ``stamp`` (released when the process dies, too)."""
    try:
        stamp.parent.mkdir(parents=True, exist_ok=True)
        handle = open(stamp.with_suffix(".lock"), "a")  # noqa: SIM115 - closed below
    except OSError:
        handle = None  # a folder we cannot write: hash without coordinating
    try:
        if handle is not None:
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        if handle is not None:
            handle.close()


def _vouches(stamp, identity, sha256):
    recorded = _read_stamp(stamp)
    return recorded is not None and recorded.get("identity") == identity and recorded.get("sha256") == sha256


def ensure_verified(path, sha256, *, stamp_dir):
    """Return True if ``path`` was hashed now, False if a stamp vouched for it; raise if it differs.

    Raises ``CorruptBundle`` naming both hashes when the file's content is not ``sha256``.
    """
    stamp = stamp_path(stamp_dir, path, sha256)
    if _vouches(stamp, file_identity(path), sha256):
        return False
    with _exclusive(stamp):
        identity = file_identity(path)
        if _vouches(stamp, identity, sha256):
            return False  # another process hashed it while this one waited
        return _hash_and_stamp(path, sha256, stamp, identity)


def record_verified(path, sha256, *, stamp_dir, identity):
    """Stamp ``path`` as holding ``sha256`` after a hash that began when it had ``identity``.

    Nothing is written when the file changed since (the hash may not describe what is there now).
    """
    if file_identity(path) == identity:
        _write_stamp(stamp_path(stamp_dir, path, sha256), {"sha256": sha256, "identity": identity})


def _hash_and_stamp(path, sha256, stamp, identity):
    actual = file_sha256(path)
    if actual != sha256:
        stamp.unlink(missing_ok=True)
        raise CorruptBundle(
            f"{Path(path).name} has sha256 {actual[:12]}…, the registry verified {sha256[:12]}…: "
            "the file changed on disk after verification"
        )
    # The file may have changed while it was hashed; a stamp must describe what was hashed.
    record_verified(path, sha256, stamp_dir=stamp.parent.parent, identity=identity)
    return True
