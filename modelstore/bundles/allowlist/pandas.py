"""Checks for what a pandas DataFrame needs (the seed layout only); pandas is imported lazily."""

import math

import numpy as np

from ..costs import short_repr
from ..exceptions import CorruptBundle
from .checks import check_bytes, check_dtype, check_int, fail, is_marker, refuse_marker


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
        fail("a DataFrame's state must hold a block manager and nothing unknown")
    if state.get("_typ", "dataframe") != "dataframe" or state.get("attrs", {}) != {}:
        fail("a DataFrame's state names another type or carries attrs")
    if any(type(name) is not str for name in state.get("_metadata", [])):
        fail("a DataFrame's metadata names must be text")
    flags = state.get("_flags", {})
    if type(flags) is not dict or any(type(v) is not bool for v in flags.values()):
        fail("a DataFrame's flags must be booleans")
    inst.__setstate__(state)


def _block_values(values):
    from pandas.arrays import ArrowStringArray

    if type(values) in (np.ndarray, np.memmap):  # a memmap only ever maps the file being read
        check_dtype(values.dtype, "column dtype", objects=True)
        return values
    if type(values) is ArrowStringArray:
        return values
    fail(f"a column holds a {type(values).__name__}, not an array")


def _unpickle_block(values, placement, ndim):
    from pandas._libs.internals import _unpickle_block as real

    values = _block_values(values)
    if type(placement) is not slice and not (type(placement) is np.ndarray and placement.dtype.kind == "i"):
        fail("a block's placement must be a slice or integer positions")
    check_int(ndim, "a block's dimensions", low=1, high=2)
    return real(values, placement, ndim)


def _block_manager(blocks, axes):
    from pandas.core.internals.blocks import Block
    from pandas.core.internals.managers import BlockManager

    pd = _pandas()
    if type(blocks) not in (tuple, list) or any(not isinstance(block, Block) for block in blocks):
        fail("a block manager takes blocks")
    if type(axes) not in (tuple, list) or len(axes) != 2 or any(not isinstance(a, pd.Index) for a in axes):
        fail("a block manager takes two indexes")
    return BlockManager(tuple(blocks), list(axes))


def _new_index(cls, state):
    pd = _pandas()
    from pandas.core.indexes.base import _new_Index

    if type(state) is not dict:
        fail("an index's state must be a dict")
    name = state.get("name")
    if name is not None and type(name) not in (str, int):
        fail("an index's name must be text or a number")
    if is_marker(cls, "pandas.RangeIndex"):
        if not set(state) <= {"name", "start", "stop", "step"}:
            fail("a range index takes only name, start, stop and step")
        for key in ("start", "stop", "step"):
            if key in state and type(state[key]) is not int:
                fail(f"a range index's {key} must be an integer")
        return _new_Index(pd.RangeIndex, state)
    if is_marker(cls, "pandas.Index"):
        # No dtype: converting what the file holds could allocate many times its size.
        if not set(state) <= {"data", "name"}:
            fail("an index takes only its data and a name")
        return _new_Index(pd.Index, {"data": _block_values(state.get("data")), "name": name})
    refuse_marker(cls, "pandas.Index", "an index class")


ARROW_STATE = {"_pa_array", "_dtype", "_cache"}


def _build_arrow_strings(inst, state, load):
    import pyarrow as pa

    pd = _pandas()
    if type(state) is not dict or not set(state) <= ARROW_STATE or state.get("_cache", {}) != {}:
        fail("an Arrow string array's state has unknown fields")
    array = state.get("_pa_array")
    if (
        not isinstance(array, pa.Array | pa.ChunkedArray)
        or not pa.types.is_string(array.type)
        and not (pa.types.is_large_string(array.type))
    ):
        fail("an Arrow string array must hold Arrow strings")
    if not isinstance(state.get("_dtype"), pd.StringDtype):
        fail("an Arrow string array must have a string dtype")
    inst.__setstate__(dict(state))


def _string_dtype(storage="python", na_value=None):
    pd = _pandas()
    if storage not in ("python", "pyarrow"):
        fail("a string dtype's storage must be python or pyarrow")
    if na_value is None:
        return pd.StringDtype(storage)
    if type(na_value) is not float or not math.isnan(na_value):
        fail("a string dtype's missing value must be NaN")
    return pd.StringDtype(storage, na_value)


ARROW_TYPES = frozenset({"string", "str", "utf8", "large_string", "large_str", "large_utf8"})


def _type_for_alias(name):
    import pyarrow.lib

    if type(name) is not str or name not in ARROW_TYPES:  # hashing a tuple from the file may never end
        fail(f"Arrow type {short_repr(name)} is not a string type")
    return pyarrow.lib.type_for_alias(name)


def _py_buffer(data):
    import pyarrow.lib

    return pyarrow.lib.py_buffer(check_bytes(data, "an Arrow buffer"))


def _restore_array(data):
    """Rebuild an Arrow string array from buffers in the file and validate every offset."""
    import pyarrow as pa
    import pyarrow.lib

    if type(data) is not tuple or len(data) != 7:
        fail("an Arrow array's state must be the 7-tuple pyarrow writes")
    arrow_type, length, null_count, offset, buffers, children, dictionary = data
    if not isinstance(arrow_type, pa.DataType) or str(arrow_type) not in ARROW_TYPES:
        fail("only Arrow string arrays are allowed")
    for value, what in ((length, "length"), (offset, "offset")):
        check_int(value, f"an Arrow array's {what}")
    check_int(null_count, "an Arrow array's null count", low=-1)
    if type(buffers) is not list or len(buffers) != 3 or children != [] or dictionary is not None:
        fail("an Arrow string array has three buffers and no children")
    if any(buffer is not None and not isinstance(buffer, pa.Buffer) for buffer in buffers):
        fail("an Arrow array's buffers must come from the file")
    array = pyarrow.lib._restore_array(data)
    try:
        array.validate(full=True)
    except Exception as exc:  # pyarrow raises ArrowInvalid and friends
        raise CorruptBundle(f"invalid Arrow array in file: {exc}") from exc
    return array
