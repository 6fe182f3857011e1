"""The hostile corpus: files that would run code, open paths or exhaust memory if loaded naively.

``corpus(marker, secret)`` returns ``{kind: (file name, bytes)}``. Every payload that could
run or open anything would create ``marker`` (or read ``secret``); the tests check that it
never appears. Pickles are assembled from opcodes, so no payload depends on what this
process can import or pickle.
"""

import bz2
import gzip
import io
import lzma
import pickle
import tempfile
import zipfile
import zlib
from functools import cache
from pathlib import Path

import joblib
import lz4.frame
import numpy as np

from modelstore.bundles import content_hash, write_bundle
from tests import factories

# The readers' kinds (artifact folders, Spark folders, training CSVs) live beside this corpus;
# tests/security/test_folder_doors.py, test_spark_doors.py and test_csv_doors.py run them.
from .hostile_readers import ARTIFACT_KINDS, CSV_KINDS, SPARK_KINDS  # noqa: F401

GiB = 1024**3


# --- assembling pickles -------------------------------------------------------------------------


def fragment(value):
    """Return the opcodes that push ``value`` (a protocol 4 pickle without PROTO, FRAME and STOP)."""
    data = pickle.dumps(value, protocol=4)[2:-1]
    return data[9:] if data[:1] == pickle.FRAME else data


def glob(module, name):
    return pickle.GLOBAL + f"{module}\n{name}\n".encode()


def call(module, name, *args):
    """Opcodes that call ``module.name(*args)``; an arg may be raw opcodes (bytes wrapped in Raw)."""
    return glob(module, name) + tuple_of(*args) + pickle.REDUCE


class Raw(bytes):
    """Opcodes pushed as they are, inside ``call`` or ``tuple_of``."""


def push(value):
    return bytes(value) if isinstance(value, Raw) else fragment(value)


def tuple_of(*items):
    return pickle.MARK + b"".join(push(item) for item in items) + pickle.TUPLE


def _setitems(items):
    body = b"".join(fragment(key) + push(value) for key, value in items.items())
    return pickle.EMPTY_DICT + pickle.MARK + body + pickle.SETITEMS


def whole(*opcodes):
    return pickle.PROTO + b"\x04" + b"".join(opcodes) + pickle.STOP


EMPTY = Raw(pickle.EMPTY_DICT)


def document(metadata=EMPTY, arrays=EMPTY):
    """A native bundle's top-level dict around raw ``metadata`` and ``arrays`` opcodes."""
    return whole(
        _setitems(
            {
                "format": "hybridrec-bundle",
                "format_version": 1,
                "kind": "cf",
                "metadata": metadata,
                "arrays": arrays,
            }
        )
    )


def seed(recs_df):
    """A seed-layout dict bundle whose ``recs_df`` is raw opcodes."""
    return whole(_setitems({"recs_df": recs_df, "user_factors": Raw(fragment([])), "customer_mapping": {}}))


# --- real bundles, made hostile --------------------------------------------------------------------


@cache
def _good_document():
    """A real native CF bundle's top-level dict (our own writer made it, so joblib may load it)."""
    with tempfile.TemporaryDirectory() as folder:
        written = write_bundle(Path(folder) / "good.joblib", kind="cf", arrays=factories.cf_array_set())
        return joblib.load(written.path)


SECRET_SHAPE = (60, 6)  # the user factors of factories.cf_array_set(): 1,440 bytes of float32


def secret_as_factors(secret):
    """A complete, consistent CF bundle whose user factors are a memory map of the secret file.

    Through a loader that allows ``numpy.memmap`` this registers, verifies ``ready`` and serves
    the file's bytes as factors (the secret file must be ``SECRET_SHAPE`` float32s long).
    """
    doc = _good_document()
    arrays = dict(doc["arrays"])
    leaked = np.frombuffer(Path(secret).read_bytes(), dtype=np.float32).reshape(SECRET_SHAPE)
    metadata = {**doc["metadata"], "content_sha256": content_hash({**arrays, "user_factors": leaked})}
    sentinel = object()

    class Pickler(pickle.Pickler):
        def reducer_override(self, obj):
            if obj is sentinel:
                return np.memmap, (str(secret), "float32", "r", 0, SECRET_SHAPE)
            return NotImplemented

    buffer = io.BytesIO()
    Pickler(buffer, protocol=4).dump(
        {**doc, "metadata": metadata, "arrays": {**arrays, "user_factors": sentinel}}
    )
    return buffer.getvalue()


def with_metadata(**changes):
    """A valid native bundle whose metadata has ``changes`` (written by joblib, so arrays are real)."""
    doc = _good_document()
    doc = {**doc, "metadata": {**doc["metadata"], **changes}}
    return joblib_bytes(doc)


def joblib_bytes(value, compress=0):
    buffer = io.BytesIO()
    joblib.dump(value, buffer, compress=compress)
    return buffer.getvalue()


def nested(depth, leaf=0):
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


def nested_dict(depth):
    value = {}
    for _ in range(depth):
        value = {"d": value}
    return value


def wrapper_header(shape, dtype="<f8", subclass=("numpy", "ndarray")):
    """joblib's NumpyArrayWrapper opcodes announcing an array of ``shape`` (the data must follow)."""
    state = _setitems(
        {
            "subclass": Raw(glob(*subclass)),
            "shape": shape,
            "order": "C",
            "dtype": Raw(
                call("numpy", "dtype", dtype[1:], False, True)
                + fragment((3, dtype[0], None, None, None, -1, -1, 0))
                + pickle.BUILD
            ),
            "allow_mmap": True,
            "numpy_array_alignment_bytes": None,
        }
    )
    return (
        glob("joblib.numpy_pickle", "NumpyArrayWrapper")
        + pickle.EMPTY_TUPLE
        + pickle.NEWOBJ
        + state
        + pickle.BUILD
    )


@cache
def announced_array_bomb(size_bytes):
    """A gzip bundle announcing a float array of ``size_bytes`` and holding that many zeros, in memory."""
    from .bombs import write_array_bomb_to  # bombs builds on this module's fragments

    buffer = io.BytesIO()
    write_array_bomb_to(buffer, size_bytes)
    return buffer.getvalue()


def compress(data, how):
    if how == "gzip":
        return gzip.compress(data)
    if how == "zlib":
        return zlib.compress(data)
    if how == "xz":
        return lzma.compress(data)
    if how == "bz2":
        return bz2.compress(data)
    return lz4.frame.compress(data)


def zip_of(data):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("bundle.joblib", data)
    return buffer.getvalue()


# --- the corpus ------------------------------------------------------------------------------------


def corpus(marker, secret):
    """Return ``{kind: (file name, bytes)}`` for every hostile kind."""
    m, s = str(marker), str(secret)
    touch = f"touch {m}"
    create = f"open({m!r}, 'w').close()"
    os_system = call("os", "system", touch)
    kinds = {
        # code at the top level, by every spelling
        "os.system": whole(os_system),
        "posix.system": whole(call("posix", "system", touch)),
        "eval": whole(call("builtins", "eval", create)),
        "exec": whole(call("builtins", "exec", create)),
        "subprocess.call": whole(call("subprocess", "call", ["touch", m])),
        "subprocess.Popen": whole(call("subprocess", "Popen", ["touch", m])),
        "builtins.open": whole(call("builtins", "open", m, "w")),
        "io.open": whole(call("io", "open", m, "w")),
        "getattr chain": whole(
            glob("builtins", "getattr")
            + tuple_of(Raw(call("importlib", "import_module", "os")), "system")
            + pickle.REDUCE
            + tuple_of(touch)
            + pickle.REDUCE
        ),
        "__import__": whole(
            glob("builtins", "getattr")
            + tuple_of(Raw(call("builtins", "__import__", "os")), "system")
            + pickle.REDUCE
            + tuple_of(touch)
            + pickle.REDUCE
        ),
        "functools.partial": whole(
            call("functools", "partial", Raw(glob("os", "system")), touch)
            + pickle.EMPTY_TUPLE
            + pickle.REDUCE
        ),
        "nested pickle.loads": whole(call("pickle", "loads", whole(os_system))),
        "numpy.save": whole(call("numpy", "save", m, [1, 2])),
        "numpy.memmap write": whole(call("numpy", "memmap", m, "uint8", "w+", 0, (4,))),
        "numpy.memmap read": secret_as_factors(secret),
        "open_memmap": whole(call("numpy.lib.format", "open_memmap", m, "w+", "<f8", (2,))),
        "joblib.dump": whole(call("joblib", "dump", 1, m)),
        "pandas.read_csv": whole(call("pandas", "read_csv", s)),
        "INST opcode": pickle.PROTO
        + b"\x02"
        + pickle.MARK
        + fragment(touch)
        + pickle.INST
        + b"os\nsystem\n"
        + pickle.STOP,
        "OBJ opcode": whole(pickle.MARK + glob("os", "system") + fragment(touch) + pickle.OBJ),
        "NEWOBJ_EX": whole(glob("os", "system") + tuple_of(touch) + fragment({}) + pickle.NEWOBJ_EX),
        "copyreg._reconstructor": whole(
            call(
                "copyreg", "_reconstructor", Raw(glob("os", "system")), Raw(glob("builtins", "object")), None
            )
        ),
        # code hidden inside data
        "in metadata": document(metadata=Raw(os_system)),
        "in arrays": document(arrays=Raw(_setitems({"user_factors": Raw(os_system)}))),
        "in a seed recs_df": seed(Raw(call("builtins", "eval", create))),
        "object array": joblib_bytes(
            {"user_factors": np.array([factories.Payload(marker, "exec")], dtype=object)}
        ),
        "joblib subclass memmap": whole(
            _setitems({"a": Raw(wrapper_header((4,), subclass=("numpy", "memmap")))})
        ),
        "gzip os.system": compress(whole(os_system), "gzip"),
        "zlib eval": compress(whole(call("builtins", "eval", create)), "zlib"),
        "xz exec": compress(whole(call("builtins", "exec", create)), "xz"),
        "lz4 os.system": compress(whole(os_system), "lz4"),
        "bz2 os.system": compress(whole(os_system), "bz2"),
        # allocation by a claim
        "bytes(10**10)": whole(call("builtins", "bytes", 10**10)),
        "bytearray(10**10)": whole(call("builtins", "bytearray", 10**10)),
        "ndarray((10**5, 10**5))": whole(call("numpy", "ndarray", (10**5, 10**5))),
        "_reconstruct huge": whole(
            call(
                "numpy._core.multiarray", "_reconstruct", Raw(glob("numpy", "ndarray")), (10**6, 10**6), b"b"
            )
        ),
        "ndarray state huge": whole(
            call("numpy._core.multiarray", "_reconstruct", Raw(glob("numpy", "ndarray")), (0,), b"b")
            + tuple_of(1, (10**6, 10**6), Raw(call("numpy", "dtype", "f8", False, True)), False, b"")
            + pickle.BUILD
        ),
        "dtype subarray": whole(call("numpy", "dtype", "(1000000000,)f8", False, True)),
        "joblib header huge": whole(_setitems({"arrays": Raw(wrapper_header((10**6, 10**6)))})),
        "gzip announced 1 GiB": compress(
            whole(_setitems({"arrays": Raw(wrapper_header((GiB // 8,)))})), "gzip"
        ),
        "gzip bomb 128 MiB": announced_array_bomb(128 * 1024**2),
        "BINBYTES8 2**40": pickle.PROTO + b"\x04" + pickle.BINBYTES8 + (2**40).to_bytes(8, "little") + b"x",
        "BINUNICODE8 2**40": pickle.PROTO
        + b"\x04"
        + pickle.BINUNICODE8
        + (2**40).to_bytes(8, "little")
        + b"x",
        "BYTEARRAY8 2**40": pickle.PROTO + b"\x05" + pickle.BYTEARRAY8 + (2**40).to_bytes(8, "little") + b"x",
        "LONG4 2**31": pickle.PROTO + b"\x04" + pickle.LONG4 + (2**31 - 1).to_bytes(4, "little") + b"\x01",
        "FRAME 2**60": pickle.PROTO + b"\x04" + pickle.FRAME + (2**60).to_bytes(8, "little"),
        "opcode flood": compress(pickle.PROTO + b"\x04" + pickle.EMPTY_LIST * 300_000 + pickle.STOP, "gzip"),
        "deep marks": pickle.PROTO + b"\x04" + pickle.MARK * 100_000 + pickle.STOP,
        "deep lists": whole(pickle.EMPTY_LIST * 5000 + pickle.APPEND * 4999),
        "deep metadata lists": with_metadata(deep=nested(150)),
        "text line 64 MiB": compress(pickle.PROTO + b"\x02" + pickle.INT + b"1" * (64 * 1024**2), "gzip"),
        # pandas and friends called the wrong way
        "pandas Index from huge range": seed(
            Raw(
                call(
                    "pandas.core.indexes.base",
                    "_new_Index",
                    Raw(glob("pandas", "Index")),
                    Raw(
                        _setitems(
                            {
                                "data": Raw(
                                    call(
                                        "pandas.core.indexes.base",
                                        "_new_Index",
                                        Raw(glob("pandas", "RangeIndex")),
                                        {"start": 0, "stop": 10**10, "step": 1},
                                    )
                                ),
                                "dtype": "float64",
                            }
                        )
                    ),
                )
            )
        ),
        "DataFrame.__init__": seed(Raw(call("pandas", "DataFrame", {"a": [1]}))),
        "RangeIndex via _reconstruct": whole(
            call("numpy._core.multiarray", "_reconstruct", Raw(glob("pandas", "RangeIndex")), (0,), b"b")
        ),
        "Arrow buffer of a size": seed(Raw(call("pyarrow.lib", "py_buffer", 10**10))),
        "Arrow bad offsets": seed(
            Raw(
                call(
                    "pyarrow.lib",
                    "_restore_array",
                    Raw(
                        tuple_of(
                            Raw(call("pyarrow.lib", "type_for_alias", "large_string")),
                            2,
                            0,
                            0,
                            Raw(
                                pickle.EMPTY_LIST
                                + pickle.MARK
                                + fragment(None)
                                + call("pyarrow.lib", "py_buffer", (10**9).to_bytes(8, "little") * 3)
                                + call("pyarrow.lib", "py_buffer", b"ab")
                                + pickle.APPENDS
                            ),
                            [],
                            None,
                        )
                    ),
                )
            )
        ),
        # metadata that is not JSON
        "metadata set": with_metadata(tags={"a", "b"}),
        "metadata bytes": with_metadata(blob=b"\x00\x01"),
        "metadata complex": with_metadata(z=1 + 2j),
        "metadata NaN": with_metadata(score=float("nan")),
        "metadata inf": with_metadata(score=float("inf")),
        "metadata NUL": with_metadata(note="a\x00b"),
        "metadata int key": with_metadata(params={1: "one"}),
        "metadata deep": with_metadata(deep=nested_dict(40)),
        "metadata huge": with_metadata(blob="x" * 400_000),
        "metadata long version": with_metadata(libraries={"numpy": "1" * 100, "joblib": "1", "pandas": None}),
        # not a bundle at all
        "truncated": _truncated(),
        "random bytes": np.random.default_rng(0).bytes(4096),
        "zip": zip_of(whole(os_system)),
        "CSV": b"item_id,title\nI1,MUG\nI2,PLATE\n",
        "JSON": b'{"user_factors": [[1, 2]], "format": "hybridrec-bundle"}',
        "HTML": b"<!DOCTYPE html><html><body>not a model</body></html>",
        "npy": _npy_bytes(),
        "NaN factors": _nan_factors(),
        # factors stored smaller (int8 with a scale per row) but inconsistent
        "int8 factors without scale": _int8_factors(scale_rows=None),
        "int8 scale too short": _int8_factors(scale_rows=59),
        "int8 scale too long": _int8_factors(scale_rows=61),
        "int8 scale NaN": _int8_factors(scale_rows=60, scale_value=float("nan")),
        "int8 scale inf": _int8_factors(scale_rows=60, scale_value=float("inf")),
        "int8 scale float64": _int8_factors(scale_rows=60, scale_dtype=np.float64),
        "int8 factors too few rows": _int8_factors(scale_rows=59, factor_rows=59),
        "int16 factors": _int8_factors(scale_rows=60, factors_dtype=np.int16),
        "float16 factors with scale": _int8_factors(scale_rows=60, factors_dtype=np.float16),
        **_amplifiers(),
    }
    names = {
        "CSV": "x.csv",
        "JSON": "x.json",
        "HTML": "x.html",
        "zip": "x.zip",
        "npy": "x.npy",
    }
    return {kind: (names.get(kind, f"{_slug(kind)}.joblib"), data) for kind, data in kinds.items()}


@cache
def _amplifiers():
    from .amplifiers import kinds  # amplifiers builds on this module's fragments

    return kinds()


def _slug(kind):
    return "".join(ch if ch.isalnum() else "-" for ch in kind).strip("-")[:40] or "x"


def _truncated():
    data = with_metadata()
    return data[: len(data) // 2]


def _npy_bytes():
    buffer = io.BytesIO()
    np.save(buffer, np.zeros((3, 3), np.float32))
    return buffer.getvalue()


def _int8_factors(
    *, scale_rows, factor_rows=60, scale_value=0.01, scale_dtype=np.float32, factors_dtype=np.int8
):
    """A native CF bundle whose smaller-stored user factors and their scales do not agree."""
    doc = _good_document()
    arrays = dict(doc["arrays"])
    arrays["user_factors"] = np.ones((factor_rows, arrays["user_factors"].shape[1]), dtype=factors_dtype)
    if scale_rows is not None:
        arrays["user_factors_scale"] = np.full(scale_rows, scale_value, dtype=scale_dtype)
    metadata = {**doc["metadata"], "content_sha256": content_hash(arrays)}
    return joblib_bytes({**doc, "metadata": metadata, "arrays": arrays})


def _nan_factors():
    doc = _good_document()
    arrays = {**doc["arrays"], "user_factors": np.full_like(doc["arrays"]["user_factors"], np.nan)}
    return joblib_bytes({**doc, "arrays": arrays})


# --- red-team files at the issue's own sizes -------------------------------------------------------
# The red-team run (bench/redteam) also sends these: a Parquet and Spark folders as large as
# they were reported. Smaller kinds of each family are in hostile_readers.py and amplifiers.py.


def parquet_many_rows(folder, rows=60_000_000, row_group_rows=4_000_000):
    """Make ``folder`` a CF artifacts folder whose ``recommendations.parquet`` holds ``rows`` rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = factories.write_cf_folder(folder, recs_format="csv")
    (folder / "recommendations.csv").unlink()
    group = pa.table(
        {
            "customer_id": pa.array(np.full(row_group_rows, "C0000", dtype=object)).dictionary_encode(),
            "item_id": pa.array(np.full(row_group_rows, "I000", dtype=object)).dictionary_encode(),
            "score": pa.array(np.ones(row_group_rows, dtype=np.float32)),
        }
    )
    with pq.ParquetWriter(folder / "recommendations.parquet", group.schema, compression="zstd") as out:
        for _ in range(rows // row_group_rows):
            out.write_table(group, row_group_size=row_group_rows)
    return folder


def _spark_metadata(folder, cls, **extra):
    import json

    (folder / "metadata").mkdir(parents=True)
    (folder / "metadata" / "part-00000").write_text(
        json.dumps({"class": cls, "sparkVersion": "4.3.0", **extra}) + "\n"
    )


def _spark_factors(folder, ids, rank, rows_per_group):
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder.mkdir(parents=True)
    features = pa.ListArray.from_arrays(
        pa.array(np.arange(0, (rows_per_group + 1) * rank, rank, dtype=np.int32)),
        pa.array(np.zeros(rows_per_group * rank, dtype=np.float32)),
    )
    schema = pa.schema([("id", pa.int32()), ("features", features.type)])
    with pq.ParquetWriter(
        folder / "part-00000.parquet", schema, compression="zstd", use_dictionary=False
    ) as out:
        for start in range(0, ids, rows_per_group):
            group_ids = pa.array(np.arange(start, start + rows_per_group, dtype=np.int32))
            out.write_table(pa.table({"id": group_ids, "features": features}, schema=schema))


def spark_als_claim(folder, users=400_000, rank=4096, items=25, rows_per_group=2_000):
    """Make ``folder`` a saved Spark ALSModel of ``users`` × ``rank`` zero factors (small once compressed)."""
    folder = Path(folder)
    _spark_metadata(folder, "org.apache.spark.ml.recommendation.ALSModel", rank=rank)
    _spark_factors(folder / "userFactors", users, rank, rows_per_group)
    _spark_factors(folder / "itemFactors", items, rank, items)
    return folder


def spark_symlink_out(folder, outside):
    """Make ``folder`` a saved Spark ALSModel whose ``userFactors`` is a symlink to ``outside``."""
    folder = Path(folder)
    _spark_metadata(folder, "org.apache.spark.ml.recommendation.ALSModel", rank=3)
    _spark_factors(Path(outside), 4, 3, 4)
    _spark_factors(folder / "itemFactors", 4, 3, 4)
    (folder / "userFactors").symlink_to(Path(outside).resolve(), target_is_directory=True)
    return folder
