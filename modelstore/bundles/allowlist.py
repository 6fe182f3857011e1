"""The allow-list: every global a bundle or artifact pickle may name, and what it may do.

Each entry maps ``(module, name)`` to a :class:`Global` that says how the unpickler may use
it, and each use goes through a small function here that checks its arguments first:

- ``call``: the vetted function a REDUCE runs instead of the real global;
- ``new``: the vetted ``cls.__new__`` a NEWOBJ runs (no ``__init__``);
- ``build``: the check a BUILD runs before it sets the state of such an instance;
- neither: a marker, accepted only as a named argument of another entry (``numpy.ndarray``
  as ``_reconstruct``'s subtype, ``pandas.Index`` as ``_new_Index``'s class).

Every entry builds its value from the pickle's own bytes: nothing here opens a path, a socket
or a module, calls back into code the file names, or allocates what an argument merely
claims (sizes are charged to the load's budget before anything is allocated).
"""

import codecs
import collections
import datetime as dt
import math
import re
import sys
from dataclasses import dataclass

import numpy as np
from joblib.numpy_pickle import NumpyArrayWrapper

from .exceptions import CorruptBundle, UnsafeBundle

MAX_NDIM = 32
MAX_UNICODE_ITEMSIZE = 4 * 65536
# dtype strings numpy pickles: bool, integers, floats, complex, fixed-width text, objects.
DTYPE_STRING = re.compile(r"[<>|=]?(b1|[iu][1248]|f[248]|c(8|16)|[US]\d{0,6}|O[48]?)")
# Python values an object array (a pandas 2 text column) may hold.
OBJECT_ELEMENTS = (str, int, float, bool, type(None))


class Refused(UnsafeBundle):
    """A global was used in a way its entry does not allow."""


def refuse_use(entry, how):
    """Raise the error for an allowed global used in a way its entry does not permit."""
    raise Refused(
        f"refused to load: the file uses {entry.module}.{entry.name} {how}, which the allow-list "
        "does not permit (nothing in the file was run)"
    )


def _refuse_marker(value, expected, role):
    if isinstance(value, Global):
        refuse_use(value, f"as {role}")
    _fail(f"{role} must be {expected}, not {type(value).__name__}")


@dataclass(frozen=True)
class Global:
    """One allow-list entry: what a REDUCE (``call``) or NEWOBJ (``new``) may do with it."""

    module: str
    name: str
    reason: str
    call: object = None
    new: object = None
    target: str = ""

    def __repr__(self):
        return f"<allowed {self.module}.{self.name}>"


def _is(entry, target):
    """Return True if ``entry`` is the allow-list marker named ``target`` (e.g. "numpy.ndarray")."""
    return isinstance(entry, Global) and entry.target == target


def _fail(message):
    raise CorruptBundle(message)


def _int(value, what, *, low=0, high=None):
    if type(value) is not int or value < low or (high is not None and value > high):
        _fail(f"{what} must be an integer in {low}..{high if high is not None else '∞'}, not {value!r:.40}")
    return value


def _shape(shape, what="array shape"):
    if type(shape) is not tuple or len(shape) > MAX_NDIM:
        _fail(f"{what} must be a tuple of at most {MAX_NDIM} dimensions")
    return tuple(_int(n, what) for n in shape)


def _nbytes(shape, dtype):
    return math.prod(shape) * dtype.itemsize


def _bytes(value, what):
    if type(value) not in (bytes, bytearray):
        _fail(f"{what} must be bytes from the file, not {type(value).__name__}")
    return value


def _dtype(value, what="dtype", *, objects=False):
    if not isinstance(value, np.dtype):
        _fail(f"{what} must be a numpy dtype, not {type(value).__name__}")
    if value.fields is not None or value.subdtype is not None or value.kind not in "biufcUSO":
        _fail(f"{what} {value} is not a plain numeric, text or object dtype")
    if value.hasobject and not objects:
        _fail(f"{what} may not hold Python objects here")
    return value


# --- builtins ---------------------------------------------------------------------------------


def _bytes_from(cls):
    def build(*args):
        if not args:
            return cls()
        if len(args) == 2 and type(args[0]) is str and args[1] in ("latin1", "latin-1"):
            return cls(args[0].encode("latin-1"))  # protocol 2 spells bytes as text
        if len(args) == 1:
            return cls(_bytes(args[0], f"{cls.__name__}()'s argument"))
        _fail(f"{cls.__name__}() takes bytes from the file, not a size or an iterable")

    return build


def _codecs_encode(text, encoding="utf-8"):
    if type(text) is not str or encoding not in ("latin1", "latin-1"):
        _fail("_codecs.encode may only turn text into latin-1 bytes")
    return codecs.encode(text, "latin-1")


def _slice(*args):
    if len(args) > 3 or any(arg is not None and type(arg) is not int for arg in args):
        _fail("slice() takes up to three integers")
    return slice(*args)


def _collection(cls):
    def build(items=()):
        if type(items) not in (list, tuple, set, frozenset):
            _fail(f"{cls.__name__}() takes a list from the file, not {type(items).__name__}")
        return cls(items)

    return build


def _complex(real=0.0, imag=0.0):
    if type(real) not in (int, float) or type(imag) not in (int, float):
        _fail("complex() takes two numbers")
    return complex(real, imag)


def _ordered_dict(items=()):
    if type(items) not in (list, tuple) or any(type(p) not in (list, tuple) or len(p) != 2 for p in items):
        _fail("OrderedDict() takes a list of pairs")
    return collections.OrderedDict(items)


def _datetime_part(cls):
    allowed = (int, bytes, str, dt.timezone, dt.timedelta, type(None))

    def build(*args):
        if len(args) > 9 or any(type(arg) not in allowed for arg in args):
            _fail(f"{cls.__name__}() takes numbers, its own byte state and a time zone")
        if args and type(args[0]) is str:  # protocol 2 spells the byte state as latin-1 text
            args = (args[0].encode("latin-1"), *args[1:])
        return cls(*args)

    return build


# --- numpy ------------------------------------------------------------------------------------


def _np_dtype(spec, align=False, copy=True):
    if type(spec) is not str or not DTYPE_STRING.fullmatch(spec):
        _fail(f"dtype {spec!r:.40} is not a plain numeric, text or object dtype")
    if type(align) is not bool or type(copy) is not bool:
        _fail("dtype()'s flags must be booleans")
    return np.dtype(spec, align, copy)


def _build_dtype(inst, state, load):
    if type(state) is not tuple or len(state) != 8:
        _fail("a dtype's state must be the 8-tuple numpy writes")
    version, order, subdescr, names, fields, elsize, alignment, flags = state
    if version != 3 or order not in ("<", ">", "|", "=") or (subdescr, names, fields) != (None, None, None):
        _fail("a dtype's state describes a structured or unknown dtype")
    _int(elsize, "dtype item size", low=-1, high=MAX_UNICODE_ITEMSIZE)
    _int(alignment, "dtype alignment", low=-1, high=16)
    _int(flags, "dtype flags", low=0, high=255)
    inst.__setstate__(state)


def _reconstruct(subtype, shape, dtype_code):
    if not _is(subtype, "numpy.ndarray"):
        _refuse_marker(subtype, "numpy.ndarray", "an array subtype")
    if shape != (0,) or dtype_code not in (b"b", "b"):
        _fail("_reconstruct may only make the empty array numpy pickles start from")
    return np.ndarray.__new__(np.ndarray, (0,), "b")


def _build_ndarray(inst, state, load):
    if type(inst) is not np.ndarray or type(state) is not tuple or len(state) != 5:
        _fail("an array's state must be the 5-tuple numpy writes")
    version, shape, dtype, is_fortran, data = state
    _int(version, "array state version", high=1)
    shape = _shape(shape)
    dtype = _dtype(dtype, objects=True)
    if type(is_fortran) is not bool:
        _fail("an array's order flag must be a boolean")
    count = math.prod(shape)
    load.budget.charge(count * max(dtype.itemsize, 8), f"an array of shape {shape}")
    if dtype.hasobject:
        if type(data) is not list or len(data) != count:
            _fail(f"an object array of shape {shape} needs {count} values")
        if any(type(value) not in OBJECT_ELEMENTS for value in data):
            _fail("object arrays may hold only text, numbers and None")
    elif len(_bytes(data, "array data")) != count * dtype.itemsize:
        _fail(f"array data has {len(data)} bytes; shape {shape} of {dtype} needs {count * dtype.itemsize}")
    inst.__setstate__(state)


def _scalar(dtype, data=None):
    dtype = _dtype(dtype, "scalar dtype")
    if len(_bytes(data, "scalar data")) != dtype.itemsize:
        _fail(f"a {dtype} scalar needs {dtype.itemsize} bytes")
    return np._core.multiarray.scalar(dtype, data)


def _frombuffer(buffer, dtype, shape, order):
    buffer = _bytes(buffer, "array buffer")
    dtype, shape = _dtype(dtype), _shape(shape)
    if order not in ("C", "F") or len(buffer) != _nbytes(shape, dtype):
        _fail(f"array buffer of {len(buffer)} bytes does not hold shape {shape} of {dtype}")
    return np.frombuffer(buffer, dtype=dtype).reshape(shape, order=order)


def _new_wrapper():
    return NumpyArrayWrapper.__new__(NumpyArrayWrapper)


WRAPPER_STATE = {"subclass", "shape", "order", "dtype", "allow_mmap", "numpy_array_alignment_bytes"}


def _build_wrapper(inst, state, load):
    """Check joblib's array header; the unpickler then reads the array it announces."""
    if type(state) is not dict or not set(state) <= WRAPPER_STATE or "dtype" not in state:
        _fail("joblib's array header has unknown or missing fields")
    if not _is(state.get("subclass"), "numpy.ndarray"):
        _refuse_marker(state.get("subclass"), "numpy.ndarray", "an array subclass")
    shape, dtype = _shape(state.get("shape")), _dtype(state["dtype"], objects=True)
    if state.get("order") not in ("C", "F") or type(state.get("allow_mmap", False)) is not bool:
        _fail("joblib's array header has a bad order or mmap flag")
    alignment = state.get("numpy_array_alignment_bytes")
    if alignment is not None:
        _int(alignment, "array alignment", high=64)
    inst.__dict__.update({**state, "subclass": np.ndarray, "shape": shape, "dtype": dtype})


# --- pandas (the seed layout only) ---------------------------------------------------------


def _pandas():
    import pandas as pd

    return pd


def _new_of(path):
    def new():
        cls = _resolve_class(path)
        return cls.__new__(cls)

    return new


def _resolve_class(path):
    module, _, name = path.rpartition(".")
    return getattr(__import__(module, fromlist=[name]), name)


FRAME_STATE = {"_mgr", "_typ", "_metadata", "attrs", "_flags"}


def _build_frame(inst, state, load):
    from pandas.core.internals.managers import BlockManager

    if (
        type(state) is not dict
        or not set(state) <= FRAME_STATE
        or type(state.get("_mgr")) is not BlockManager
    ):
        _fail("a DataFrame's state must hold a block manager and nothing unknown")
    if state.get("_typ", "dataframe") != "dataframe" or state.get("attrs", {}) != {}:
        _fail("a DataFrame's state names another type or carries attrs")
    if any(type(name) is not str for name in state.get("_metadata", [])):
        _fail("a DataFrame's metadata names must be text")
    flags = state.get("_flags", {})
    if type(flags) is not dict or any(type(v) is not bool for v in flags.values()):
        _fail("a DataFrame's flags must be booleans")
    inst.__setstate__(state)


def _block_values(values):
    from pandas.arrays import ArrowStringArray

    if type(values) in (np.ndarray, np.memmap):  # a memmap only ever maps the file being read
        _dtype(values.dtype, "column dtype", objects=True)
        return values
    if type(values) is ArrowStringArray:
        return values
    _fail(f"a column holds a {type(values).__name__}, not an array")


def _unpickle_block(values, placement, ndim):
    from pandas._libs.internals import _unpickle_block as real

    values = _block_values(values)
    if type(placement) is not slice and not (type(placement) is np.ndarray and placement.dtype.kind == "i"):
        _fail("a block's placement must be a slice or integer positions")
    _int(ndim, "a block's dimensions", low=1, high=2)
    return real(values, placement, ndim)


def _block_manager(blocks, axes):
    from pandas.core.internals.blocks import Block
    from pandas.core.internals.managers import BlockManager

    pd = _pandas()
    if type(blocks) not in (tuple, list) or any(not isinstance(block, Block) for block in blocks):
        _fail("a block manager takes blocks")
    if type(axes) not in (tuple, list) or len(axes) != 2 or any(not isinstance(a, pd.Index) for a in axes):
        _fail("a block manager takes two indexes")
    return BlockManager(tuple(blocks), list(axes))


def _new_index(cls, state):
    pd = _pandas()
    from pandas.core.indexes.base import _new_Index

    if type(state) is not dict:
        _fail("an index's state must be a dict")
    name = state.get("name")
    if name is not None and type(name) not in (str, int):
        _fail("an index's name must be text or a number")
    if _is(cls, "pandas.RangeIndex"):
        if not set(state) <= {"name", "start", "stop", "step"}:
            _fail("a range index takes only name, start, stop and step")
        for key in ("start", "stop", "step"):
            if key in state and type(state[key]) is not int:
                _fail(f"a range index's {key} must be an integer")
        return _new_Index(pd.RangeIndex, state)
    if _is(cls, "pandas.Index"):
        # No dtype: converting what the file holds could allocate many times its size.
        if not set(state) <= {"data", "name"}:
            _fail("an index takes only its data and a name")
        return _new_Index(pd.Index, {"data": _block_values(state.get("data")), "name": name})
    _refuse_marker(cls, "pandas.Index", "an index class")


ARROW_STATE = {"_pa_array", "_dtype", "_cache"}


def _build_arrow_strings(inst, state, load):
    import pyarrow as pa

    pd = _pandas()
    if type(state) is not dict or not set(state) <= ARROW_STATE or state.get("_cache", {}) != {}:
        _fail("an Arrow string array's state has unknown fields")
    array = state.get("_pa_array")
    if (
        not isinstance(array, pa.Array | pa.ChunkedArray)
        or not pa.types.is_string(array.type)
        and not (pa.types.is_large_string(array.type))
    ):
        _fail("an Arrow string array must hold Arrow strings")
    if not isinstance(state.get("_dtype"), pd.StringDtype):
        _fail("an Arrow string array must have a string dtype")
    inst.__setstate__(dict(state))


def _string_dtype(storage="python", na_value=None):
    pd = _pandas()
    if storage not in ("python", "pyarrow"):
        _fail("a string dtype's storage must be python or pyarrow")
    if na_value is None:
        return pd.StringDtype(storage)
    if type(na_value) is not float or not math.isnan(na_value):
        _fail("a string dtype's missing value must be NaN")
    return pd.StringDtype(storage, na_value)


ARROW_TYPES = frozenset({"string", "str", "utf8", "large_string", "large_str", "large_utf8"})


def _type_for_alias(name):
    import pyarrow.lib

    if name not in ARROW_TYPES:
        _fail(f"Arrow type {name!r:.40} is not a string type")
    return pyarrow.lib.type_for_alias(name)


def _py_buffer(data):
    import pyarrow.lib

    return pyarrow.lib.py_buffer(_bytes(data, "an Arrow buffer"))


def _restore_array(data):
    """Rebuild an Arrow string array from buffers in the file and validate every offset."""
    import pyarrow as pa
    import pyarrow.lib

    if type(data) is not tuple or len(data) != 7:
        _fail("an Arrow array's state must be the 7-tuple pyarrow writes")
    arrow_type, length, null_count, offset, buffers, children, dictionary = data
    if not isinstance(arrow_type, pa.DataType) or str(arrow_type) not in ARROW_TYPES:
        _fail("only Arrow string arrays are allowed")
    for value, what in ((length, "length"), (offset, "offset")):
        _int(value, f"an Arrow array's {what}")
    _int(null_count, "an Arrow array's null count", low=-1)
    if type(buffers) is not list or len(buffers) != 3 or children != [] or dictionary is not None:
        _fail("an Arrow string array has three buffers and no children")
    if any(buffer is not None and not isinstance(buffer, pa.Buffer) for buffer in buffers):
        _fail("an Arrow array's buffers must come from the file")
    array = pyarrow.lib._restore_array(data)
    try:
        array.validate(full=True)
    except Exception as exc:  # pyarrow raises ArrowInvalid and friends
        raise CorruptBundle(f"invalid Arrow array in file: {exc}") from exc
    return array


# --- the table --------------------------------------------------------------------------------


def _spellings(pairs, reason, **uses):
    """Return one entry per spelling (public module and defining module) of one global."""
    return [Global(module, name, reason, **uses) for module, name in pairs]


BUILTINS = [
    Global(
        "builtins", "bytearray", "copies bytes from the file; a size is refused", call=_bytes_from(bytearray)
    ),
    Global("builtins", "bytes", "copies bytes from the file; a size is refused", call=_bytes_from(bytes)),
    Global("_codecs", "encode", "protocol 2 bytes: latin-1 text from the file", call=_codecs_encode),
    Global("builtins", "slice", "up to three integers", call=_slice),
    Global("builtins", "set", "values already in the file", call=_collection(set)),
    Global("builtins", "frozenset", "values already in the file", call=_collection(frozenset)),
    Global("builtins", "complex", "two numbers", call=_complex),
    Global("collections", "OrderedDict", "pairs already in the file", call=_ordered_dict),
    Global("datetime", "datetime", "numbers or its own byte state", call=_datetime_part(dt.datetime)),
    Global("datetime", "date", "numbers or its own byte state", call=_datetime_part(dt.date)),
    Global("datetime", "timedelta", "three integers", call=_datetime_part(dt.timedelta)),
    Global("datetime", "timezone", "an offset and a name", call=_datetime_part(dt.timezone)),
]

NUMPY_DTYPE = Global(
    "numpy", "dtype", "a plain dtype from a short string; its state is checked", call=_np_dtype
)
NUMPY_SCALAR = _spellings(
    [("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar")],
    "one number from exactly its item size of bytes",
    call=_scalar,
)
NUMPY = [
    Global(
        "numpy",
        "ndarray",
        "marker: only as _reconstruct's subtype or joblib's subclass",
        target="numpy.ndarray",
    ),
    NUMPY_DTYPE,
    *NUMPY_SCALAR,
    *_spellings(
        [("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct")],
        "only the empty array numpy starts from; its state is checked against its data",
        call=_reconstruct,
    ),
    *_spellings(
        [("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer")],
        "a view of bytes in the file whose length matches the shape",
        call=_frombuffer,
    ),
    Global(
        "joblib.numpy_pickle",
        "NumpyArrayWrapper",
        "joblib's array header, checked against the budget before the array is read",
        new=_new_wrapper,
    ),
]

PANDAS = [
    *_spellings(
        [("pandas", "DataFrame"), ("pandas.core.frame", "DataFrame")],
        "made without __init__; its state must be a block manager",
        new=_new_of("pandas.DataFrame"),
    ),
    Global(
        "pandas.core.internals.managers",
        "BlockManager",
        "blocks and two indexes already built",
        call=_block_manager,
    ),
    *_spellings(
        [("pandas._libs.internals", "_unpickle_block"), ("pandas.core.internals.blocks", "new_block")],
        "a column block around an array already built",
        call=_unpickle_block,
    ),
    Global(
        "pandas.core.indexes.base",
        "_new_Index",
        "an Index around an array already built, or a lazy RangeIndex; no dtype conversion",
        call=_new_index,
    ),
    *_spellings(
        [("pandas", "Index"), ("pandas.core.indexes.base", "Index")],
        "marker: only as _new_Index's class",
        target="pandas.Index",
    ),
    *_spellings(
        [("pandas", "RangeIndex"), ("pandas.core.indexes.range", "RangeIndex")],
        "marker: only as _new_Index's class",
        target="pandas.RangeIndex",
    ),
    *_spellings(
        [("pandas.arrays", "ArrowStringArray"), ("pandas.core.arrays.string_arrow", "ArrowStringArray")],
        "made without __init__; its state must be a validated Arrow string array",
        new=_new_of("pandas.arrays.ArrowStringArray"),
    ),
    *_spellings(
        [("pandas", "StringDtype"), ("pandas.core.arrays.string_", "StringDtype")],
        "a storage name and NaN",
        call=_string_dtype,
    ),
    Global("pyarrow.lib", "type_for_alias", "the name of an Arrow string type", call=_type_for_alias),
    Global("pyarrow.lib", "py_buffer", "wraps bytes already in the file", call=_py_buffer),
    Global(
        "pyarrow.lib",
        "_restore_array",
        "an Arrow string array over buffers from the file, validated",
        call=_restore_array,
    ),
]


def _table(*groups):
    return {(entry.module, entry.name): entry for group in groups for entry in group}


NATIVE = _table(BUILTINS, NUMPY)
SEED = _table(BUILTINS, NUMPY, PANDAS)
# Mapping pickles in artifact folders: builtin containers and numpy integer rows.
MAPPING = _table(BUILTINS, [NUMPY_DTYPE, *NUMPY_SCALAR])


def builder_for(inst):
    """Return the check a BUILD must pass before it sets ``inst``'s state, or None to refuse."""
    if type(inst) is np.ndarray:
        return _build_ndarray
    if isinstance(inst, np.dtype):
        return _build_dtype
    if type(inst) is NumpyArrayWrapper:
        return _build_wrapper
    pd = sys.modules.get("pandas")  # a pandas object exists only if a seed entry made one
    if pd is not None and type(inst) is pd.DataFrame:
        return _build_frame
    if pd is not None and type(inst) is pd.arrays.ArrowStringArray:
        return _build_arrow_strings
    return None
