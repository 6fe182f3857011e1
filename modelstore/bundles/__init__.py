"""The bundle file format: writing, safe opening, verification and seed-layout conversion."""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from .artifacts import read_cb_artifacts, read_cf_artifacts
from .exceptions import (
    BundleError,
    CorruptBundle,
    IncompatibleBundle,
    InvalidMetadata,
    OversizedBundle,
    UnsafeBundle,
)
from .format import (
    COMPRESSORS,
    FORMAT,
    FORMAT_VERSION,
    Bundle,
    WrittenBundle,
    bundle_from_document,
    content_hash,
    detect_compression,
    file_sha256,
    open_bundle,
    parse_compression,
    read_metadata,
    write_bundle,
)
from .layout import CB, CF, KINDS
from .limits import DEFAULT_LIMITS, Limits
from .metadata import plain_metadata
from .safe import NATIVE_GLOBALS, SEED_GLOBALS, refuse, safe_joblib_load
from .seed import convert_seed_bundle, is_seed_bundle
from .types import ArraySet, Metadata, PathLike
from .verify import verify_arrays, verify_bundle
from .writers import write_artifacts_bundle, write_cb_bundle, write_cf_bundle

T = TypeVar("T")

__all__ = [
    "CB",
    "CF",
    "COMPRESSORS",
    "FORMAT",
    "FORMAT_VERSION",
    "KINDS",
    "Bundle",
    "BundleError",
    "CorruptBundle",
    "IncompatibleBundle",
    "InvalidMetadata",
    "Limits",
    "LoadedFile",
    "OversizedBundle",
    "UnsafeBundle",
    "WrittenBundle",
    "content_hash",
    "detect_compression",
    "file_sha256",
    "load_any",
    "open_bundle",
    "plain_metadata",
    "parse_compression",
    "read_artifacts",
    "read_cb_artifacts",
    "read_cf_artifacts",
    "read_metadata",
    "verify_arrays",
    "verify_bundle",
    "write_artifacts_bundle",
    "write_bundle",
    "write_cb_bundle",
    "write_cf_bundle",
]


@dataclass(frozen=True)
class LoadedFile:
    """A file read for registration: its array set and where it came from."""

    kind: str
    arrays: ArraySet
    metadata: Metadata
    layout: str  # "native", "seed-bundle", "cf-artifacts", "cb-artifacts"
    compression: str | None


def load_any(path: PathLike, *, limits: Limits | None = None) -> LoadedFile:
    """Read a native or seed-layout bundle file (plain or compressed) into an array set.

    Nothing named by the file is run: the allow-list covers numpy, joblib's array wrapper,
    builtin containers and, for the seed layout, the pandas classes a DataFrame needs.
    Reading stays within ``limits``; metadata comes back as plain JSON types. Every problem
    is a ``BundleError``.
    """
    path = Path(path)
    if not path.is_file():
        raise CorruptBundle(f"{path.name} does not exist or is not a file")
    compression = detect_compression(path)
    seen: set[tuple[str, str]] = set()
    obj = safe_joblib_load(
        path, mmap_mode="r" if compression is None else None, allowed=SEED_GLOBALS, seen=seen, limits=limits
    )
    if isinstance(obj, dict) and obj.get("format") == FORMAT:
        # One load serves both layouts; a native bundle must still keep to the native list.
        for module, name in sorted(seen - NATIVE_GLOBALS):
            refuse(module, name)
        bundle = bundle_from_document(obj, path, compression=compression, memory_mapped=compression is None)
        return LoadedFile(bundle.kind, bundle.arrays, dict(bundle.metadata), "native", compression)
    if is_seed_bundle(obj):
        kind, arrays, metadata = _converted(lambda: convert_seed_bundle(obj), path.name)
        return LoadedFile(kind, arrays, metadata, "seed-bundle", compression)
    raise IncompatibleBundle(
        f"{path.name} is neither a {FORMAT} file nor a seed-layout bundle "
        f"(top-level object: {type(obj).__name__})"
    )


def _converted(convert: Callable[[], T], name: str) -> T:
    """Run a seed-layout conversion; whatever pandas or numpy raise on odd input is a CorruptBundle."""
    try:
        return convert()
    except BundleError:
        raise
    except Exception as exc:  # the parts came from an untrusted file: any failure means a bad file
        raise CorruptBundle(f"cannot convert {name}: {str(exc)[:200] or type(exc).__name__}") from exc


def read_artifacts(path: PathLike, kind: str, *, limits: Limits | None = None) -> LoadedFile:
    """Read a CF or CB artifacts folder into an array set, each file within ``limits``."""
    reader = {CF: read_cf_artifacts, CB: read_cb_artifacts}.get(kind)
    if reader is None:
        raise ValueError(f"kind {kind!r} is not one of {', '.join(KINDS)}")
    limits = limits or DEFAULT_LIMITS
    arrays, metadata = _converted(lambda: reader(path, limits=limits), Path(path).name)
    return LoadedFile(kind, arrays, metadata, f"{kind}-artifacts", None)
