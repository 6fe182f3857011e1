"""The allow-list: every global a bundle or artifact pickle may name, and what it may do.

Each entry maps ``(module, name)`` to a :class:`Global` that says how the unpickler may use
it, and each use goes through a small function that checks its arguments first:

- ``call``: the vetted function a REDUCE runs instead of the real global;
- ``new``: the vetted ``cls.__new__`` a NEWOBJ runs (no ``__init__``); the BUILD that follows
  must pass the check ``builder_for`` returns for the new object's type;
- neither: a marker, accepted only as a named argument of another entry (``numpy.ndarray``
  as ``_reconstruct``'s subtype, ``pandas.Index`` as ``_new_Index``'s class).

Every entry builds its value from the pickle's own bytes: nothing here opens a path, a socket
or a module, calls back into code the file names, or allocates what an argument merely
claims (sizes are charged to the load's budget before anything is allocated).
"""

import datetime as dt
import sys

import numpy as np
from joblib.numpy_pickle import NumpyArrayWrapper

from .checks import Global, Refused, refuse_use
from .core import (
    _build_dtype,
    _build_ndarray,
    _build_wrapper,
    _bytes_from,
    _codecs_encode,
    _collection,
    _complex,
    _datetime_part,
    _frombuffer,
    _members,
    _new_wrapper,
    _np_dtype,
    _ordered_dict,
    _pair_keys,
    _reconstruct,
    _scalar,
    _slice,
)
from .pandas import (
    _block_manager,
    _build_arrow_strings,
    _build_frame,
    _new_index,
    _new_of,
    _py_buffer,
    _restore_array,
    _string_dtype,
    _type_for_alias,
    _unpickle_block,
)

__all__ = ["MAPPING", "NATIVE", "SEED", "Global", "Refused", "builder_for", "refuse_use"]


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
    Global("builtins", "set", "values already in the file", call=_collection(set), hashes=_members),
    Global(
        "builtins", "frozenset", "values already in the file", call=_collection(frozenset), hashes=_members
    ),
    Global("builtins", "complex", "two numbers", call=_complex),
    Global("collections", "OrderedDict", "pairs already in the file", call=_ordered_dict, hashes=_pair_keys),
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
