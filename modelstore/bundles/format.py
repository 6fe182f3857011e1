"""Write, open and describe bundle files.

A bundle is one joblib file whose top-level object is a plain dict::

    {"format": "hybridrec-bundle", "format_version": 1, "kind": "cf" | "cb",
     "metadata": {...}, "arrays": {name: ndarray}}

Uncompressed bundles open memory-mapped in milliseconds at any size; compressed ones are
read into memory. Opening never runs code from the file (see ``safe.py``).
"""

import datetime as dt
import hashlib
import importlib.metadata
import io
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import joblib
import numpy as np

from .exceptions import CorruptBundle, IncompatibleBundle
from .layout import KINDS, REQUIRED, counts, storage_facts
from .limits import Limits
from .metadata import plain_metadata
from .safe import NATIVE_GLOBALS, safe_joblib_load
from .types import ArrayInput, ArraySet, Metadata, PathLike, Progress

FORMAT = "hybridrec-bundle"
FORMAT_VERSION = 1
COMPRESSORS = ("zlib", "gzip", "lz4", "xz")
DEFAULT_LEVEL = 3
_CHUNK_BYTES = 8 * 1024 * 1024

# First bytes of each container joblib can write; a bare pickle starts with PROTO (0x80).
_MAGIC = (
    (b"\x1f\x8b", "gzip"),
    (b"\xfd7zXZ", "xz"),
    (b"\x04\x22\x4d\x18", "lz4"),
    (b"BZh", "bz2"),
    (b"\x78", "zlib"),
)


@dataclass(frozen=True)
class Bundle:
    """An opened bundle: its kind, metadata and arrays (memory-mapped when possible)."""

    kind: str
    metadata: Metadata
    arrays: ArraySet
    path: Path
    compression: str | None
    memory_mapped: bool
    format_version: int = FORMAT_VERSION
    counts: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class WrittenBundle:
    """What ``write_bundle`` wrote: where, its file hash and size, and its metadata."""

    path: Path
    sha256: str
    size_bytes: int
    compression: str | None
    metadata: Metadata


def parse_compression(spec: str | tuple[str, int] | None | bool) -> tuple[str | None, int]:
    """Return ``(algorithm or None, level)`` from ``None``, ``"none"``, ``"lz4"`` or ``"lz4:3"``."""
    if spec in (None, "", "none", False):
        return None, 0
    if isinstance(spec, tuple):
        algorithm, level = spec
    else:
        algorithm, _, level_text = str(spec).partition(":")
        try:
            level = int(level_text) if level_text else DEFAULT_LEVEL
        except ValueError:
            raise ValueError(f"compression level {level_text!r} is not an integer") from None
    if algorithm not in COMPRESSORS:
        raise ValueError(
            f"unknown compression {algorithm!r}; valid values are none, {', '.join(COMPRESSORS)}"
        )
    if not 1 <= int(level) <= 9:
        raise ValueError(f"compression level {level} is outside 1..9")
    if algorithm == "lz4":
        try:
            import lz4  # noqa: F401
        except ImportError:
            raise ValueError("lz4 compression needs the 'lz4' package") from None
    return algorithm, int(level)


def detect_compression(path: PathLike) -> str | None:
    """Return the compressor a file was written with, or None for a plain pickle."""
    with open(path, "rb") as handle:
        head = handle.read(8)
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    return None


def file_sha256(path: PathLike, *, progress: Progress | None = None) -> str:
    """Return the hex sha256 of a file, reading it in chunks (``progress(done, total)``)."""
    digest = hashlib.sha256()
    total = os.path.getsize(path)
    done = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK_BYTES):
            digest.update(chunk)
            done += len(chunk)
            if progress:
                progress(done, total)
    return digest.hexdigest()


def content_hash(arrays: ArraySet) -> str:
    """Return a sha256 over array names, dtypes, shapes and bytes, independent of the file."""
    digest = hashlib.sha256()
    for name in sorted(arrays):
        array = arrays[name]
        digest.update(f"{name}|{array.dtype.str}|{array.shape}\n".encode())
        flat = np.ascontiguousarray(array).reshape(-1)
        step = max(_CHUNK_BYTES // max(flat.itemsize, 1), 1)
        for start in range(0, flat.shape[0], step):
            digest.update(flat[start : start + step].tobytes())
    return digest.hexdigest()


def library_versions() -> dict[str, str | None]:
    """Return the versions of the libraries a bundle's readers care about."""
    versions: dict[str, str | None] = {"joblib": joblib.__version__, "numpy": np.__version__}
    try:
        versions["pandas"] = importlib.metadata.version("pandas")
    except importlib.metadata.PackageNotFoundError:
        versions["pandas"] = None
    return versions


def check_arrays(arrays: object) -> None:
    """Raise ``CorruptBundle`` unless every value is a numeric or fixed-width unicode array."""
    if not isinstance(arrays, dict) or not arrays:
        raise CorruptBundle("bundle has no arrays")
    for name, array in arrays.items():
        if not isinstance(name, str):
            raise CorruptBundle(f"array name {name!r} is not a string")
        if not isinstance(array, np.ndarray):
            raise CorruptBundle(f"{name} is a {type(array).__name__}, not a numpy array")
        if array.dtype.kind not in "biufU":
            raise CorruptBundle(
                f"{name} has dtype {array.dtype}; only numeric and fixed-width unicode arrays are allowed"
            )


def write_bundle(
    path: PathLike,
    *,
    kind: str,
    arrays: Mapping[str, ArrayInput],
    metadata: Metadata | None = None,
    compress: str | tuple[str, int] | None = None,
    content_sha256: str | None = None,
) -> WrittenBundle:
    """Write a bundle atomically (temporary file, then rename) and return what was written.

    ``compress`` is None (memory-mappable, the default), ``"zlib"``, ``"gzip"``, ``"lz4"``,
    ``"xz"``, optionally with a level (``"lz4:3"``). ``metadata`` is stored as plain JSON
    types (``InvalidMetadata`` when it cannot be), so what this writes, the reader accepts.
    ``content_sha256`` is ``content_hash(arrays)`` when the caller has just computed it (one
    pass over every byte fewer; verification recomputes it from the file either way).
    """
    if kind not in KINDS:
        raise ValueError(f"kind {kind!r} is not one of {', '.join(KINDS)}")
    checked = {name: np.asarray(array) for name, array in arrays.items()}
    check_arrays(checked)
    algorithm, level = parse_compression(compress)
    metadata = plain_metadata(metadata)
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    full_metadata = {
        **metadata,
        "created_at": metadata.get("created_at", now),
        "kind": kind,
        "counts": counts(kind, checked),
        **storage_facts(kind, checked),
        "content_sha256": content_sha256 or content_hash(checked),
        "libraries": library_versions(),
        "compression": algorithm,
    }
    document = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "kind": kind,
        "metadata": full_metadata,
        "arrays": checked,
    }
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(handle)
    try:
        with open(temporary, "wb") as output:
            writer = _HashingWriter(output)
            joblib.dump(document, writer, compress=(algorithm, level) if algorithm else 0)
            output.flush()
            os.fsync(output.fileno())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return WrittenBundle(
        path=target,
        sha256=writer.digest.hexdigest(),
        size_bytes=target.stat().st_size,
        compression=algorithm,
        metadata=full_metadata,
    )


class _HashingWriter(io.RawIOBase):
    """A write-only file that hashes what passes through it: the file's sha256 without reading it back."""

    def __init__(self, handle: BinaryIO) -> None:
        super().__init__()
        self.handle = handle
        self.digest = hashlib.sha256()

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.digest.update(data)
        return self.handle.write(data)

    def tell(self) -> int:  # joblib aligns arrays for memory-mapping by the position
        return self.handle.tell()


def _document(obj: object, path: PathLike) -> dict[str, Any]:
    """Return the checked top-level dict of a native bundle."""
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise IncompatibleBundle(
            f"{Path(path).name} is not a {FORMAT} file (is it a seed-layout bundle? import it instead)"
        )
    version = obj.get("format_version")
    if not isinstance(version, int) or version < 1 or version > FORMAT_VERSION:
        raise IncompatibleBundle(
            f"{Path(path).name} has format_version {version!r}; this code reads 1..{FORMAT_VERSION}"
        )
    if obj.get("kind") not in KINDS:
        raise CorruptBundle(f"{Path(path).name} has kind {obj.get('kind')!r}; expected one of {KINDS}")
    if not isinstance(obj.get("metadata"), dict):
        raise CorruptBundle(f"{Path(path).name} has no metadata dict")
    check_arrays(obj.get("arrays"))
    return obj


def open_bundle(
    path: PathLike, *, expected_sha256: str | None = None, mmap: bool = True, limits: Limits | None = None
) -> Bundle:
    """Open a native bundle, memory-mapped when uncompressed, without running code.

    With ``expected_sha256`` the file is hashed first and refused when it differs. ``limits``
    bound what reading it may spend (``limits.DEFAULT_LIMITS`` when None).
    """
    path = Path(path)
    if not path.is_file():
        raise CorruptBundle(f"bundle file {path.name} does not exist")
    if expected_sha256 is not None:
        actual = file_sha256(path)
        if actual != expected_sha256:
            raise CorruptBundle(
                f"{path.name} has sha256 {actual[:12]}…, expected {expected_sha256[:12]}…: "
                "the file changed after it was registered"
            )
    compression = detect_compression(path)
    use_mmap = mmap and compression is None
    obj = safe_joblib_load(path, mmap_mode="r" if use_mmap else None, allowed=NATIVE_GLOBALS, limits=limits)
    return bundle_from_document(obj, path, compression=compression, memory_mapped=use_mmap)


def bundle_from_document(
    obj: object, path: PathLike, *, compression: str | None, memory_mapped: bool
) -> Bundle:
    """Return the Bundle of an already-unpickled native document, checking its structure."""
    document = _document(obj, path)
    return Bundle(
        kind=document["kind"],
        metadata=plain_metadata(document["metadata"]),
        arrays=document["arrays"],
        path=Path(path),
        compression=compression,
        memory_mapped=memory_mapped,
        format_version=document["format_version"],
        counts=counts(document["kind"], document["arrays"]) if _has_count_arrays(document) else {},
    )


def _has_count_arrays(document: dict[str, Any]) -> bool:
    return REQUIRED[document["kind"]] <= set(document["arrays"])


def read_metadata(path: PathLike) -> Metadata:
    """Return a bundle's kind, format version and metadata without reading its arrays.

    Uncompressed bundles are memory-mapped, so this takes milliseconds at any size.
    """
    bundle = open_bundle(path, mmap=True)
    return {"kind": bundle.kind, "format_version": bundle.format_version, **bundle.metadata}
