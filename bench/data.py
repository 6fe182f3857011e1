"""Benchmark data sets at a scale, written once and cached in the data folder.

    from bench.data import SCALES, dataset
    path = dataset("10m", "native", ctx)        # the memory-mappable CF bundle

Every form of one scale holds the same model: customer ids are 8-or-more-digit integers (spelled
as text in our bundles, plain ints in the seed layout, like the seed's customer numbers), item
ids likewise, in shuffled row order. Forms:

- ``native``: our CF bundle, uncompressed (memory-mapped when opened);
- ``native-zlib``, ``native-gzip``, ``native-lz4``, ``native-xz``: the same, compressed (level 3);
- ``cb``: our CB bundle over the same items (L2-normalised vectors, 50 precomputed neighbours);
- ``artifacts``: the seed layout's CF artifacts folder ("individual files"): ``user_factors.npy``,
  ``item_factors.npy``, ``customer_mapping.pkl``, ``item_mapping.pkl``,
  ``recommendations.parquet``, ``interactions.npz``;
- ``seed-bundle``: the seed layout's joblib dict (``recs_df`` DataFrame, factors, the two id
  dicts, ``metadata``).

Nothing here holds one Python object per customer: arrays are generated in chunks of customers
into ``.npy`` memory maps, ids are made digit by digit with numpy, and the seed layout's
``{id: row}`` dicts are written as pickle opcodes straight from numpy (they only become dicts
when a reader unpickles them). The seed bundle's ``recs_df`` is a DataFrame of numpy columns, so
building it costs its bytes (~20 bytes per recommendation) and no Python objects.
"""

import json
import os
import pickle
import shutil
import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.report import Context

FORMS = ("native", "native-zlib", "native-gzip", "native-lz4", "native-xz", "cb", "artifacts", "seed-bundle")
COMPRESSED_FORMS = {
    "native-zlib": "zlib:3",
    "native-gzip": "gzip:3",
    "native-lz4": "lz4:3",
    "native-xz": "xz:3",
}
NEIGHBORS = 50
CB_DIMS = 64
USERS_PER_CHUNK = 1_000_000
NEIGHBOR_BLOCK_ROWS = 1024
# Customer and item ids are these numbers plus a shuffled row number.
USER_ID_BASE = 10_000_000
ITEM_ID_BASE = 100_000
# Strides that spread a customer's items over the catalogue; coprime with every scale's item count.
RECS_STRIDE, INTERACTIONS_STRIDE = 97, 131


@dataclass(frozen=True)
class Scale:
    """A data set's size: customers × items × factors, with per-customer list lengths."""

    name: str
    users: int
    items: int
    factors: int = 64
    recs_per_user: int = 10
    interactions_per_user: int = 20
    seed: int = 13

    @property
    def folder_name(self) -> str:
        return (
            f"cf-{self.users}x{self.items}x{self.factors}"
            f"-r{self.recs_per_user}-i{self.interactions_per_user}-s{self.seed}"
        )

    @property
    def label(self) -> str:
        return f"{self.users:,} × {self.items:,} × {self.factors}"


SCALES = {
    "tiny": Scale("tiny", 20_000, 1_000),
    "seed": Scale("seed", 552_782, 7_214),
    "0.1m": Scale("0.1m", 100_000, 100_000),
    "1m": Scale("1m", 1_000_000, 100_000),
    "3m": Scale("3m", 3_000_000, 100_000),
    "10m": Scale("10m", 10_000_000, 100_000),
}


def scale_of(scale: "str | Scale") -> Scale:
    """Return a ``Scale`` from its name (a key of ``SCALES``) or itself."""
    if isinstance(scale, Scale):
        return scale
    try:
        return SCALES[scale]
    except KeyError:
        raise ValueError(f"unknown scale {scale!r}; valid scales are {', '.join(SCALES)}") from None


def dataset(scale: "str | Scale", form: str, ctx: Context) -> Path:
    """Return the path of ``form`` at ``scale`` in ``ctx.data_dir``, writing it first if missing."""
    scale = scale_of(scale)
    if form not in FORMS:
        raise ValueError(f"unknown form {form!r}; valid forms are {', '.join(FORMS)}")
    folder = ctx.data_dir / scale.folder_name
    path = folder / _FILE_NAMES[form]
    if path.exists():
        return path
    folder.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    ctx.log(f"writing {form} at {scale.label} into {folder}")
    _WRITERS[form](scale, folder, path, ctx)
    ctx.log(f"wrote {form} at {scale.label} in {time.perf_counter() - started:.1f} s")
    return path


def size_bytes(path: Path) -> int:
    """Return a file's size, or the total of a folder's files."""
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


# --- ids ---------------------------------------------------------------------------------------


def digits_as_text(numbers: np.ndarray) -> np.ndarray:
    """Return non-negative integers as fixed-width decimal text (``<U{width}``), without Python objects.

    Every number must have the same count of digits (the ids here do: base + row < 10 × base).
    """
    numbers = np.asarray(numbers, dtype=np.int64)
    if numbers.size == 0:
        return np.empty(0, dtype="<U1")
    width = len(str(int(numbers.max())))
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    codes = ((numbers[:, None] // powers) % 10 + ord("0")).astype(np.uint32)
    return np.ascontiguousarray(codes).view(f"<U{width}").reshape(-1)


def _shuffled_numbers(n: int, base: int, seed: int) -> np.ndarray:
    """Return the id number of each row: ``base`` plus a permutation of 0..n-1 (int64)."""
    return base + np.random.default_rng(seed).permutation(n).astype(np.int64)


# --- the parts, generated once per scale as .npy files ------------------------------------------

_PARTS = (
    "user_numbers",
    "item_numbers",
    "user_factors",
    "item_factors",
    "recs_indices",
    "recs_scores",
    "interactions_indices",
    "item_popularity",
)


def _parts(scale: Scale, folder: Path, ctx: Context) -> dict[str, np.ndarray]:
    """Return the model's arrays as read-only memory maps, generating them in chunks first."""
    parts_dir = folder / "parts"
    done = parts_dir / "done"
    if not done.exists():
        shutil.rmtree(parts_dir, ignore_errors=True)
        parts_dir.mkdir(parents=True)
        _generate_parts(scale, parts_dir, ctx)
        done.write_text("ok\n")
    return {name: np.load(parts_dir / f"{name}.npy", mmap_mode="r") for name in _PARTS}


def _generate_parts(scale: Scale, out: Path, ctx: Context) -> None:
    n_users, n_items, f = scale.users, scale.items, scale.factors
    np.save(out / "user_numbers.npy", _shuffled_numbers(n_users, USER_ID_BASE, scale.seed))
    np.save(out / "item_numbers.npy", _shuffled_numbers(n_items, ITEM_ID_BASE, scale.seed + 1))
    rng = np.random.default_rng(scale.seed + 2)
    item_factors = rng.standard_normal((n_items, f), dtype=np.float32) * np.float32(0.3)
    np.save(out / "item_factors.npy", item_factors)

    def open_out(name: str, shape: tuple[int, ...], dtype: str) -> np.memmap:
        return np.lib.format.open_memmap(out / f"{name}.npy", mode="w+", dtype=dtype, shape=shape)

    user_factors = open_out("user_factors", (n_users, f), "float32")
    recs_indices = open_out("recs_indices", (n_users * scale.recs_per_user,), "int32")
    recs_scores = open_out("recs_scores", (n_users * scale.recs_per_user,), "float32")
    seen = open_out("interactions_indices", (n_users * scale.interactions_per_user,), "int32")
    popularity = np.zeros(n_items, dtype=np.int64)
    for start in range(0, n_users, USERS_PER_CHUNK):
        stop = min(start + USERS_PER_CHUNK, n_users)
        rows = stop - start
        user_factors[start:stop] = rng.standard_normal((rows, f), dtype=np.float32) * np.float32(0.3)
        recs = _spread(rng, rows, scale.recs_per_user, n_items, RECS_STRIDE)
        scores = -np.sort(-rng.random((rows, scale.recs_per_user), dtype=np.float32), axis=1)
        had = np.sort(_spread(rng, rows, scale.interactions_per_user, n_items, INTERACTIONS_STRIDE), axis=1)
        r, i = scale.recs_per_user, scale.interactions_per_user
        recs_indices[start * r : stop * r] = recs.reshape(-1)
        recs_scores[start * r : stop * r] = scores.reshape(-1)
        seen[start * i : stop * i] = had.reshape(-1)
        popularity += np.bincount(had.reshape(-1), minlength=n_items)
        ctx.log(f"  parts: {stop:,} of {n_users:,} customers")
    for array in (user_factors, recs_indices, recs_scores, seen):
        array.flush()
    del user_factors, recs_indices, recs_scores, seen
    np.save(out / "item_popularity.npy", popularity.astype(np.float32))


def _spread(rng: np.random.Generator, rows: int, per_row: int, n_items: int, stride: int) -> np.ndarray:
    """Return int32 (rows, per_row): distinct item rows per row (a random start, a fixed stride)."""
    start = rng.integers(0, n_items, size=(rows, 1), dtype=np.int64)
    return ((start + np.arange(per_row) * stride) % n_items).astype(np.int32)


def cf_arrays_of(scale: Scale, folder: Path, ctx: Context) -> dict[str, np.ndarray]:
    """Return the CF bundle's arrays (names as in docs/ARCHITECTURE.md), big ones memory-mapped."""
    parts = _parts(scale, folder, ctx)
    user_numbers = np.asarray(parts["user_numbers"])
    item_numbers = np.asarray(parts["item_numbers"])
    user_order = np.argsort(user_numbers, kind="stable").astype(np.int64)
    item_order = np.argsort(item_numbers, kind="stable").astype(np.int64)
    user_ids = digits_as_text(user_numbers)
    item_ids = digits_as_text(item_numbers)
    r, i = scale.recs_per_user, scale.interactions_per_user
    return {
        "user_ids": user_ids,
        "user_ids_sorted": user_ids[user_order],
        "user_ids_order": user_order,
        "item_ids": item_ids,
        "item_ids_sorted": item_ids[item_order],
        "item_ids_order": item_order,
        "user_factors": parts["user_factors"],
        "item_factors": parts["item_factors"],
        "recs_indptr": np.arange(0, scale.users * r + 1, r, dtype=np.int64),
        "recs_indices": parts["recs_indices"],
        "recs_scores": parts["recs_scores"],
        "interactions_indptr": np.arange(0, scale.users * i + 1, i, dtype=np.int64),
        "interactions_indices": parts["interactions_indices"],
        "item_popularity": parts["item_popularity"],
    }


# --- writers, one per form --------------------------------------------------------------------


def _write_native(scale: Scale, folder: Path, path: Path, ctx: Context) -> None:
    from modelstore.bundles import write_bundle

    arrays = cf_arrays_of(scale, folder, ctx)
    write_bundle(path, kind="cf", arrays=arrays, metadata={"source": "bench", "scale": scale.name})


def _write_compressed(scale: Scale, folder: Path, path: Path, ctx: Context) -> None:
    from modelstore.bundles import write_bundle

    form = next(form for form, name in _FILE_NAMES.items() if name == path.name)
    arrays = cf_arrays_of(scale, folder, ctx)
    write_bundle(
        path,
        kind="cf",
        arrays=arrays,
        metadata={"source": "bench", "scale": scale.name},
        compress=COMPRESSED_FORMS[form],
    )


def _write_cb(scale: Scale, folder: Path, path: Path, ctx: Context) -> None:
    from modelstore.bundles import write_bundle
    from modelstore.bundles.layout import cb_arrays, l2_normalise

    parts = _parts(scale, folder, ctx)
    rng = np.random.default_rng(scale.seed + 3)
    vectors = l2_normalise(rng.standard_normal((scale.items, CB_DIMS), dtype=np.float32))
    indices, scores = neighbors_in_blocks(vectors, NEIGHBORS, log=ctx.log)
    item_ids = digits_as_text(np.asarray(parts["item_numbers"]))
    titles = np.char.add("PRODUCT ", item_ids)
    arrays = cb_arrays(
        item_ids=item_ids,
        item_vectors=vectors,
        item_titles=titles,
        neighbor_indices=indices,
        neighbor_scores=scores,
        normalise=False,
    )
    write_bundle(path, kind="cb", arrays=arrays, metadata={"source": "bench", "scale": scale.name})


def neighbors_in_blocks(
    vectors: np.ndarray, k: int, *, log: Callable[[str], None] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Return each row's ``k`` most similar other rows (int32, float32, both (n, k)), best first.

    Similarities are computed ``NEIGHBOR_BLOCK_ROWS`` rows at a time, so memory stays at
    block × n floats instead of the n × n matrix (40 GB at 100,000 items).
    """
    n = vectors.shape[0]
    k = min(k, max(n - 1, 0))
    indices = np.empty((n, k), dtype=np.int32)
    scores = np.empty((n, k), dtype=np.float32)
    for start in range(0, n, NEIGHBOR_BLOCK_ROWS):
        stop = min(start + NEIGHBOR_BLOCK_ROWS, n)
        block = vectors[start:stop] @ vectors.T
        block[np.arange(stop - start), np.arange(start, stop)] = -np.inf
        part = np.argpartition(-block, k - 1, axis=1)[:, :k]
        part_scores = np.take_along_axis(block, part, axis=1)
        order = np.argsort(-part_scores, axis=1, kind="stable")
        indices[start:stop] = np.take_along_axis(part, order, axis=1)
        scores[start:stop] = np.take_along_axis(part_scores, order, axis=1)
        if log and (stop == n or (start // NEIGHBOR_BLOCK_ROWS) % 20 == 19):
            log(f"  neighbours: {stop:,} of {n:,} items")
    return indices, scores


def _write_artifacts(scale: Scale, folder: Path, path: Path, ctx: Context) -> None:
    parts = _parts(scale, folder, ctx)
    temporary = path.with_name(path.name + ".tmp")
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir()
    for name in ("user_factors", "item_factors"):
        os.link(folder / "parts" / f"{name}.npy", temporary / f"{name}.npy")
    write_int_mapping_pickle(temporary / "customer_mapping.pkl", parts["user_numbers"])
    write_int_mapping_pickle(temporary / "item_mapping.pkl", parts["item_numbers"])
    _write_recs_parquet(temporary / "recommendations.parquet", scale, parts)
    _write_interactions_npz(temporary / "interactions.npz", scale, parts)
    (temporary / "metadata.json").write_text(json.dumps({"source": "bench", "scale": scale.name}) + "\n")
    os.replace(temporary, path)


def _recs_columns(
    scale: Scale, parts: dict[str, np.ndarray], start: int, stop: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (customer_id int64, item_id int64, score float32) of customers ``start:stop``."""
    r = scale.recs_per_user
    customers = np.repeat(np.asarray(parts["user_numbers"][start:stop]), r)
    items = np.asarray(parts["item_numbers"])[np.asarray(parts["recs_indices"][start * r : stop * r])]
    return customers, items, np.asarray(parts["recs_scores"][start * r : stop * r])


def _write_recs_parquet(path: Path, scale: Scale, parts: dict[str, np.ndarray]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([("customer_id", pa.int64()), ("item_id", pa.int64()), ("score", pa.float32())])
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, scale.users, USERS_PER_CHUNK):
            stop = min(start + USERS_PER_CHUNK, scale.users)
            customers, items, scores = _recs_columns(scale, parts, start, stop)
            writer.write_table(pa.table([customers, items, scores], schema=schema))


def _write_interactions_npz(path: Path, scale: Scale, parts: dict[str, np.ndarray]) -> None:
    """Write the users × items interactions as scipy's CSR ``.npz`` (what ``save_npz`` writes)."""
    i = scale.interactions_per_user
    np.savez(
        path,
        indices=parts["interactions_indices"],
        indptr=np.arange(0, scale.users * i + 1, i, dtype=np.int32 if scale.users * i < 2**31 else np.int64),
        format=np.array("csr"),
        shape=np.array([scale.users, scale.items]),
        data=np.ones(scale.users * i, dtype=np.int8),
    )


# --- the seed layout's {id: row} dicts, as pickle opcodes from numpy -------------------------

_BATCH = 1000  # pickle's own SETITEMS batch
_PAIR = np.dtype([("key_op", "u1"), ("key", "<i4"), ("value_op", "u1"), ("value", "<i4")])


def int_mapping_opcodes(numbers: np.ndarray) -> Iterator[bytes]:
    """Yield the pickle opcodes of ``{int(numbers[row]): row}`` after an EMPTY_DICT, in chunks.

    Keys and rows must fit in 31 bits (BININT). No dict or int object is made.
    """
    numbers = np.asarray(numbers, dtype=np.int64)
    if numbers.size and (numbers.min() < 0 or numbers.max() >= 2**31):
        raise ValueError("ids must fit in 31 bits")
    yield pickle.EMPTY_DICT
    chunk_rows = 100 * _BATCH
    for start in range(0, numbers.shape[0], chunk_rows):
        stop = min(start + chunk_rows, numbers.shape[0])
        pairs = np.empty(stop - start, dtype=_PAIR)
        pairs["key_op"] = pairs["value_op"] = pickle.BININT[0]
        pairs["key"] = numbers[start:stop]
        pairs["value"] = np.arange(start, stop)
        raw = pairs.tobytes()
        width = _PAIR.itemsize * _BATCH
        out = bytearray()
        for offset in range(0, len(raw), width):
            out += pickle.MARK + raw[offset : offset + width] + pickle.SETITEMS
        yield bytes(out)


def write_int_mapping_pickle(path: Path, numbers: np.ndarray) -> None:
    """Write ``{int(numbers[row]): row}`` as a plain protocol-4 pickle file (what ``pickle.dump`` reads)."""
    with open(path, "wb") as handle:
        handle.write(pickle.PROTO + struct.pack("<B", 4))
        for chunk in int_mapping_opcodes(numbers):
            handle.write(chunk)
        handle.write(pickle.STOP)


class IntMapping:
    """Stands for ``{int(numbers[row]): row}`` in a joblib dump; written as opcodes, never built."""

    def __init__(self, numbers: np.ndarray) -> None:
        self.numbers = numbers


def _write_seed_bundle(scale: Scale, folder: Path, path: Path, ctx: Context) -> None:
    import pandas as pd
    from joblib.numpy_pickle import NumpyPickler

    class SeedPickler(NumpyPickler):
        def save(self, obj: object, save_persistent_id: bool = True) -> None:
            if isinstance(obj, IntMapping):
                if self.proto >= 4:
                    self.framer.commit_frame(force=True)
                for chunk in int_mapping_opcodes(obj.numbers):
                    self.file_handle.write(chunk)
                return
            super().save(obj)

    parts = _parts(scale, folder, ctx)
    customers, items, scores = _recs_columns(scale, parts, 0, scale.users)
    recs_df = pd.DataFrame({"customer_id": customers, "item_id": items, "score": scores}, copy=False)
    del customers, items, scores
    document = {
        "recs_df": recs_df,
        # Plain ndarray views of the memory maps: a pickled numpy.memmap names a class no reader allows.
        "user_factors": np.asarray(parts["user_factors"]),
        "item_factors": np.asarray(parts["item_factors"]),
        "customer_mapping": IntMapping(parts["user_numbers"]),
        "item_mapping": IntMapping(parts["item_numbers"]),
        "metadata": {"source": "bench", "scale": scale.name, "model": "synthetic"},
    }
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "wb") as handle:
        SeedPickler(handle).dump(document)
    os.replace(temporary, path)


_FILE_NAMES = {
    "native": "native.joblib",
    "native-zlib": "native-zlib.joblib",
    "native-gzip": "native-gzip.joblib",
    "native-lz4": "native-lz4.joblib",
    "native-xz": "native-xz.joblib",
    "cb": "cb.joblib",
    "artifacts": "artifacts",
    "seed-bundle": "seed.joblib",
}
_WRITERS: dict[str, Callable[[Scale, Path, Path, Context], None]] = {
    "native": _write_native,
    "native-zlib": _write_compressed,
    "native-gzip": _write_compressed,
    "native-lz4": _write_compressed,
    "native-xz": _write_compressed,
    "cb": _write_cb,
    "artifacts": _write_artifacts,
    "seed-bundle": _write_seed_bundle,
}
