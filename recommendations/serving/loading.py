"""What the cache loads: a target (a registry version or an artifacts folder) turned into an engine.

Bundles open memory-mapped through ``modelstore.bundles.open_bundle`` after
``storage.verified_path`` has checked that the file is the one the registry verified (a bad
node-cache copy of a remote file is downloaded again first: only bad stored content is refused). Artifacts folders go through
``modelstore.bundles.read_artifacts``, which may import pandas; bundles never do.
"""

import os
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path

from django.utils import timezone

from modelstore import node_cache, storage
from modelstore.bundles import CB, CF, CorruptBundle, IncompatibleBundle, open_bundle, read_artifacts
from modelstore.bundles.stamps import file_identity
from modelstore.services import bundle_limits

from ..engines import CBEngine, CFEngine, Engine
from .exceptions import BundleFileChanged

BUNDLE = "bundle"
FILES = "files"
# The engine that serves each kind of bundle.
ENGINES: dict[str, type[Engine]] = {CF: CFEngine, CB: CBEngine}


@dataclass(frozen=True)
class Target:
    """Something the cache can load for a kind: an active registry version or an artifacts folder."""

    kind: str
    source: str  # BUNDLE or FILES
    version_id: int | None = None
    label: str = ""
    sha256: str = ""
    file_name: str = ""
    folder: str = ""

    @property
    def key(self):
        """Return what makes two targets the same model."""
        return (self.kind, self.source, self.version_id, self.sha256, self.folder)

    def reference(self):
        """Return how answers name this model: ``{"id", "label", "sha256", "source"}``."""
        return {
            "id": self.version_id,
            "label": self.label,
            "sha256": self.sha256 or None,
            "source": self.source,
        }


@dataclass(frozen=True, eq=False)
class LoadedModel:
    """A model ready to answer: its engine and where it came from."""

    target: Target
    engine: Engine
    memory_mapped: bool
    compression: str | None
    hashed: bool
    load_seconds: float
    loaded_at: object = field(default_factory=timezone.now)
    path: Path | None = None  # the memory-mapped bundle file
    identity: dict | None = None  # its file_identity when it was verified
    handle: int | None = None  # a descriptor of that file, for the per-request fstat
    handle_stat: tuple | None = None  # its (size, mtime_ns, ctime_ns) when it was verified

    def file_touched(self):
        """Return True if the file was written, resized or unlinked since it was verified.

        One ``fstat`` of an open descriptor (well under a microsecond), so every request can
        afford it: an edit or a truncation is then noticed before the next request reads the
        changed pages, not only at the next check. A file replaced by rename is not seen here
        (the old pages stay valid); ``file_change`` notices it.
        """
        if self.handle is None:
            return False
        stat = os.fstat(self.handle)
        return stat.st_nlink == 0 or (stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns) != self.handle_stat

    def file_change(self):
        """Return how the served file differs from the one verified (``"was deleted"``...), or None."""
        if self.identity is None:
            return None
        try:
            now = file_identity(self.path)
        except FileNotFoundError:
            return "was deleted"
        changed = [name for name, value in self.identity.items() if now.get(name) != value]
        return f"changed on disk ({', '.join(changed)} differ)" if changed else None

    @property
    def kind(self):
        return self.target.kind

    def reference(self):
        return self.target.reference()

    def describe(self):
        """Return what health reports about this model."""
        return {
            **self.reference(),
            "memory_mapped": self.memory_mapped,
            "compression": self.compression,
            "hashed_on_load": self.hashed,
            "load_seconds": round(self.load_seconds, 4),
            "loaded_at": self.loaded_at.isoformat(),
            "counts": self.engine.describe_counts(),
        }


def files_target(kind, folder):
    """Return the target of an artifacts folder named in settings."""
    return Target(kind=kind, source=FILES, label=f"files:{Path(folder).name}", folder=str(folder))


def load(target, *, stamp_dir):
    """Load ``target`` and build its engine; raise BundleError, OSError or EngineError if it cannot.

    Raises ``BundleFileChanged`` when a bundle's file is missing or no longer holds what the
    registry verified.
    """
    started = time.perf_counter()
    hashed = False
    path = identity = handle = handle_stat = None
    if target.source == BUNDLE:
        try:
            path, hashed = storage.verified_path(target.file_name, target.sha256, stamp_dir=stamp_dir)
            identity = file_identity(path)
        except FileNotFoundError as exc:
            raise BundleFileChanged(f"the file of {target.kind} version {target.label} was deleted") from exc
        except CorruptBundle as exc:
            raise BundleFileChanged(f"{target.kind} version {target.label}: {exc}") from exc
        bundle = open_bundle(path, mmap=True, limits=bundle_limits())
        if bundle.kind != target.kind:
            raise IncompatibleBundle(f"{path.name} holds a {bundle.kind} bundle, not {target.kind}")
        arrays, memory_mapped, compression = bundle.arrays, bundle.memory_mapped, bundle.compression
        # What was verified, so a change between the hash and this open is noticed too.
        # A shared lock on it, too: the node cache never evicts a file a process serves.
        handle = node_cache.hold(path)
        handle_stat = (identity["size"], identity["mtime_ns"], identity["ctime_ns"])
    else:
        loaded = read_artifacts(target.folder, target.kind, limits=bundle_limits())
        arrays, memory_mapped, compression = loaded.arrays, False, None
    try:
        engine = ENGINES[target.kind](arrays)
        engine.warm_up()
    except BaseException:
        if handle is not None:
            os.close(handle)
        raise
    model = LoadedModel(
        target=target,
        engine=engine,
        memory_mapped=memory_mapped,
        compression=compression,
        hashed=hashed,
        load_seconds=time.perf_counter() - started,
        path=path,
        identity=identity,
        handle=handle,
        handle_stat=handle_stat,
    )
    if handle is not None:
        weakref.finalize(model, os.close, handle)  # closed when the model is dropped
    return model
