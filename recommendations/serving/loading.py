"""What the cache loads: a target (a registry version or an artifacts folder) turned into an engine.

Bundles open memory-mapped through ``modelstore.bundles.open_bundle`` after ``ensure_verified``
has checked that the file is the one the registry verified. Artifacts folders go through
``modelstore.bundles.read_artifacts``, which may import pandas; bundles never do.
"""

import time
from dataclasses import dataclass, field
from pathlib import Path

from django.utils import timezone

from modelstore import storage
from modelstore.bundles import IncompatibleBundle, open_bundle, read_artifacts
from modelstore.services import bundle_limits

from ..engines import CBEngine, CFEngine
from .verified import ensure_verified

BUNDLE = "bundle"
FILES = "files"
ENGINES = {"cf": CFEngine, "cb": CBEngine}


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
    engine: object
    memory_mapped: bool
    compression: str | None
    hashed: bool
    load_seconds: float
    loaded_at: object = field(default_factory=timezone.now)

    @property
    def kind(self):
        return self.target.kind

    def reference(self):
        return self.target.reference()

    def describe(self):
        """Return what health reports about this model."""
        engine = self.engine
        counts = {"n_items": engine.n_items}
        if self.kind == "cf":
            counts.update(n_users=engine.n_users, n_factors=engine.n_factors)
        else:
            counts.update(n_dimensions=int(engine.item_vectors.shape[1]))
        return {
            **self.reference(),
            "memory_mapped": self.memory_mapped,
            "compression": self.compression,
            "hashed_on_load": self.hashed,
            "load_seconds": round(self.load_seconds, 4),
            "loaded_at": self.loaded_at.isoformat(),
            "counts": counts,
        }


def files_target(kind, folder):
    """Return the target of an artifacts folder named in settings."""
    return Target(kind=kind, source=FILES, label=f"files:{Path(folder).name}", folder=str(folder))


def load(target, *, stamp_dir):
    """Load ``target`` and build its engine; raise BundleError, OSError or EngineError if it cannot."""
    started = time.perf_counter()
    hashed = False
    if target.source == BUNDLE:
        path = storage.local_path(target.file_name, target.sha256)
        hashed = ensure_verified(path, target.sha256, stamp_dir=stamp_dir)
        bundle = open_bundle(path, mmap=True, limits=bundle_limits())
        if bundle.kind != target.kind:
            raise IncompatibleBundle(f"{path.name} holds a {bundle.kind} bundle, not {target.kind}")
        arrays, memory_mapped, compression = bundle.arrays, bundle.memory_mapped, bundle.compression
    else:
        loaded = read_artifacts(target.folder, target.kind, limits=bundle_limits())
        arrays, memory_mapped, compression = loaded.arrays, False, None
    engine = ENGINES[target.kind](arrays)
    _warm_up(engine)
    return LoadedModel(
        target=target,
        engine=engine,
        memory_mapped=memory_mapped,
        compression=compression,
        hashed=hashed,
        load_seconds=time.perf_counter() - started,
    )


def _warm_up(engine):
    """Answer one question so the first real request does not pay for the first page faults."""
    if engine.n_items == 0:
        return
    if isinstance(engine, CFEngine):
        engine.popular(10)
        if engine.n_users:
            engine.recommend(str(engine.users.ids[0]), 10)
    else:
        engine.similar_items(str(engine.items.ids[0]), 10)
