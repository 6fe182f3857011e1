"""Checks for the builtin and numpy globals (every list) and joblib's array header."""

import codecs
import collections
import datetime as dt
import math

import numpy as np
from joblib.numpy_pickle import NumpyArrayWrapper

from ..costs import short_repr
from .checks import (
    DTYPE_STRING,
    MAX_UNICODE_ITEMSIZE,
    OBJECT_ELEMENTS,
    check_bytes,
    check_dtype,
    check_int,
    check_shape,
    fail,
    is_marker,
    nbytes_of,
    refuse_marker,
)


def _bytes_from(cls):
    def build(*args):
        if not args:
            return cls()
        if len(args) == 2 and type(args[0]) is str and args[1] in ("latin1", "latin-1"):
            return cls(args[0].encode("latin-1"))  # protocol 2 spells bytes as text
        if len(args) == 1:
            return cls(check_bytes(args[0], f"{cls.__name__}()'s argument"))
        fail(f"{cls.__name__}() takes bytes from the file, not a size or an iterable")

    return build


def _codecs_encode(text, encoding="utf-8"):
    if type(text) is not str or encoding not in ("latin1", "latin-1"):
        fail("_codecs.encode may only turn text into latin-1 bytes")
    return codecs.encode(text, "latin-1")


def _slice(*args):
    if len(args) > 3 or any(arg is not None and type(arg) is not int for arg in args):
        fail("slice() takes up to three integers")
    return slice(*args)


def _collection(cls):
    def build(items=()):
        if type(items) not in (list, tuple, set, frozenset):
            fail(f"{cls.__name__}() takes a list from the file, not {type(items).__name__}")
        return cls(items)

    return build


def _members(items=(), *rest):
    """Return the values ``set(items)`` or ``frozenset(items)`` would hash."""
    return items if type(items) in (list, tuple, set, frozenset) else ()


def _pair_keys(items=(), *rest):
    """Return the keys ``OrderedDict(items)`` would hash."""
    if type(items) not in (list, tuple):
        return ()
    return [pair[0] for pair in items if type(pair) in (list, tuple) and len(pair) == 2]


def _complex(real=0.0, imag=0.0):
    if type(real) not in (int, float) or type(imag) not in (int, float):
        fail("complex() takes two numbers")
    return complex(real, imag)


def _ordered_dict(items=()):
    if type(items) not in (list, tuple) or any(type(p) not in (list, tuple) or len(p) != 2 for p in items):
        fail("OrderedDict() takes a list of pairs")
    return collections.OrderedDict(items)


def _datetime_part(cls):
    allowed = (int, bytes, str, dt.timezone, dt.timedelta, type(None))

    def build(*args):
        if len(args) > 9 or any(type(arg) not in allowed for arg in args):
            fail(f"{cls.__name__}() takes numbers, its own byte state and a time zone")
        if args and type(args[0]) is str:  # protocol 2 spells the byte state as latin-1 text
            args = (args[0].encode("latin-1"), *args[1:])
        return cls(*args)

    return build


# --- numpy ------------------------------------------------------------------------------------


def _np_dtype(spec, align=False, copy=True):
    if type(spec) is not str or not DTYPE_STRING.fullmatch(spec):
        fail(f"dtype {short_repr(spec)} is not a plain numeric, text or object dtype")
    if type(align) is not bool or type(copy) is not bool:
        fail("dtype()'s flags must be booleans")
    return np.dtype(spec, align, copy)


def _build_dtype(inst, state, load):
    if type(state) is not tuple or len(state) != 8:
        fail("a dtype's state must be the 8-tuple numpy writes")
    version, order, subdescr, names, fields, elsize, alignment, flags = state
    if version != 3 or order not in ("<", ">", "|", "=") or (subdescr, names, fields) != (None, None, None):
        fail("a dtype's state describes a structured or unknown dtype")
    check_int(elsize, "dtype item size", low=-1, high=MAX_UNICODE_ITEMSIZE)
    check_int(alignment, "dtype alignment", low=-1, high=16)
    check_int(flags, "dtype flags", low=0, high=255)
    inst.__setstate__(state)


def _reconstruct(subtype, shape, dtype_code):
    if not is_marker(subtype, "numpy.ndarray"):
        refuse_marker(subtype, "numpy.ndarray", "an array subtype")
    if shape != (0,) or dtype_code not in (b"b", "b"):
        fail("_reconstruct may only make the empty array numpy pickles start from")
    return np.ndarray.__new__(np.ndarray, (0,), "b")


def _build_ndarray(inst, state, load):
    if type(inst) is not np.ndarray or type(state) is not tuple or len(state) != 5:
        fail("an array's state must be the 5-tuple numpy writes")
    version, shape, dtype, is_fortran, data = state
    check_int(version, "array state version", high=1)
    shape = check_shape(shape)
    dtype = check_dtype(dtype, objects=True)
    if type(is_fortran) is not bool:
        fail("an array's order flag must be a boolean")
    count = math.prod(shape)
    # Charged as made: one data string reused through the memo would fill many arrays.
    load.budget.charge_made(count * max(dtype.itemsize, 8), f"an array of shape {shape}")
    if dtype.hasobject:
        if type(data) is not list or len(data) != count:
            fail(f"an object array of shape {shape} needs {count} values")
        if any(type(value) not in OBJECT_ELEMENTS for value in data):
            fail("object arrays may hold only text, numbers and None")
    elif len(check_bytes(data, "array data")) != count * dtype.itemsize:
        fail(f"array data has {len(data)} bytes; shape {shape} of {dtype} needs {count * dtype.itemsize}")
    inst.__setstate__(state)


def _scalar(dtype, data=None):
    dtype = check_dtype(dtype, "scalar dtype")
    if len(check_bytes(data, "scalar data")) != dtype.itemsize:
        fail(f"a {dtype} scalar needs {dtype.itemsize} bytes")
    return np._core.multiarray.scalar(dtype, data)  # type: ignore[attr-defined]


def _frombuffer(buffer, dtype, shape, order):
    buffer = check_bytes(buffer, "array buffer")
    dtype, shape = check_dtype(dtype), check_shape(shape)
    if order not in ("C", "F") or len(buffer) != nbytes_of(shape, dtype):
        fail(f"array buffer of {len(buffer)} bytes does not hold shape {shape} of {dtype}")
    return np.frombuffer(buffer, dtype=dtype).reshape(shape, order=order)


def _new_wrapper():
    return NumpyArrayWrapper.__new__(NumpyArrayWrapper)


WRAPPER_STATE = {"subclass", "shape", "order", "dtype", "allow_mmap", "numpy_array_alignment_bytes"}


def _build_wrapper(inst, state, load):
    """Check joblib's array header; the unpickler then reads the array it announces."""
    if type(state) is not dict or not set(state) <= WRAPPER_STATE or "dtype" not in state:
        fail("joblib's array header has unknown or missing fields")
    if not is_marker(state.get("subclass"), "numpy.ndarray"):
        refuse_marker(state.get("subclass"), "numpy.ndarray", "an array subclass")
    shape, dtype = check_shape(state.get("shape")), check_dtype(state["dtype"], objects=True)
    if state.get("order") not in ("C", "F") or type(state.get("allow_mmap", False)) is not bool:
        fail("joblib's array header has a bad order or mmap flag")
    alignment = state.get("numpy_array_alignment_bytes")
    if alignment is not None:
        check_int(alignment, "array alignment", high=64)
    defaults = {"allow_mmap": False, "numpy_array_alignment_bytes": None}  # older joblib omits them
    inst.__dict__.update({**defaults, **state, "subclass": np.ndarray, "shape": shape, "dtype": dtype})
