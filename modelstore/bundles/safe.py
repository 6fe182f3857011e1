"""Unpickle untrusted files through the allow-list, within a byte budget.

Pickles run code: any global a pickle names can be called while it loads. Bundles and
artifact pickles come from uploads, so this unpickler (joblib's, which is pure Python)
replaces every opcode that can call, construct, or change an object:

- GLOBAL and STACK_GLOBAL look the name up in an allow-list table (the ``allowlist`` package) and push
  its entry, never the real object; anything else stops the load with :class:`UnsafeBundle`;
- REDUCE runs only an entry's vetted ``call``, NEWOBJ only its vetted ``new``; INST, OBJ and
  NEWOBJ_EX are refused; BUILD sets state only on types with a state check;
- APPEND, SETITEM and ADDITEMS work only on real lists, dicts and sets;
- every byte read, every array allocated and every opcode is charged to a budget before it
  is spent; MARKs and container nesting have a depth limit;
- every call is charged what it may make from its arguments before it runs, and every key
  that goes into a dict or set is checked first (``costs``): a value reused through the memo
  costs each time it is used, and keys sharing a hash or too costly to hash are refused.

The module is a little over 350 lines on purpose: every opcode handler and both entry points
that a security review must read sit in one file.
"""

import _compat_pickle
import collections
import io
import os
import pickle
import struct
from typing import Any, BinaryIO

import numpy as np
from joblib.numpy_pickle import NumpyArrayWrapper, NumpyUnpickler

from . import allowlist
from .allowlist import Global
from .costs import KeyGuard, made_by, short_repr
from .exceptions import BundleError, CorruptBundle, IncompatibleBundle, OversizedBundle, UnsafeBundle
from .limits import (
    DEFAULT_LIMITS,
    OPCODE_COST_BYTES,
    BoundedReader,
    Budget,
    DecompressingReader,
    decompressor_for,
)
from .sniff import refuse_non_pickle

NATIVE_GLOBALS = frozenset(allowlist.NATIVE)
SEED_GLOBALS = frozenset(allowlist.SEED)
MAPPING_GLOBALS = frozenset(allowlist.MAPPING)
_TABLES = {NATIVE_GLOBALS: allowlist.NATIVE, SEED_GLOBALS: allowlist.SEED, MAPPING_GLOBALS: allowlist.MAPPING}
_CONTAINERS = (list, tuple, dict, set, frozenset)


def refuse(module, name):
    """Raise the error for a global outside the allow-list."""
    raise UnsafeBundle(
        f"refused to load: the file names {module}.{name}, which is not on the allow-list "
        "of data types (nothing in the file was run)"
    )


def _opcode(name):
    return getattr(pickle, name)[0]


class SafeUnpickler(NumpyUnpickler):
    """joblib's unpickler, restricted to an allow-list and a byte budget."""

    dispatch = dict(NumpyUnpickler.dispatch)

    def __init__(
        self,
        filename,
        file_handle,
        *,
        budget,
        limits,
        allowed=NATIVE_GLOBALS,
        seen=None,
        mmap_mode=None,
        file_size=None,
    ):
        self.table = _TABLES[allowed]
        self.seen = seen
        self.budget = budget
        self.limits = limits
        self.keys = KeyGuard(limits.max_equal_hashes)
        self.file_size = file_size
        reader = BoundedReader(file_handle, budget, max_line_bytes=limits.max_line_bytes, name=filename)
        super().__init__(filename, reader, ensure_native_byte_order=mmap_mode is None, mmap_mode=mmap_mode)

    # --- the loop, with an opcode budget --------------------------------------------------

    def load(self):
        """Read one pickle; charge every opcode, and refuse what the allow-list does not permit."""
        self._unframer = pickle._Unframer(self._file_read, self._file_readline)  # type: ignore[attr-defined]
        self.read = self._unframer.read
        self.readinto = self._unframer.readinto
        self.readline = self._unframer.readline
        self.metastack = []
        self.stack: list[Any] = []
        self.append = self.stack.append
        self.proto = 0
        read, dispatch = self.read, self.dispatch
        ops = 0
        try:
            while True:
                key = read(1)
                if not key:
                    raise EOFError("the pickle ends before its STOP opcode")
                ops += 1
                if ops & 0xFFF == 0:
                    self.budget.charge(0x1000 * OPCODE_COST_BYTES, "the objects of 4,096 more opcodes")
                dispatch[key[0]](self)
        except pickle._Stop as stop:  # type: ignore[attr-defined]
            return stop.value

    # --- names -----------------------------------------------------------------------------

    def find_class(self, module, name):
        if self.proto < 3:  # protocol 2 spells Python 3 names the Python 2 way
            module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
            module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        entry = self.table.get((module, name))
        if entry is None:
            refuse(module, name)
        if self.seen is not None:
            self.seen.add((module, name))
        return entry

    def load_global(self):
        module = self.readline()[:-1].decode("utf-8")
        name = self.readline()[:-1].decode("utf-8")
        self.append(self.find_class(module, name))

    def load_stack_global(self):
        name, module = self.stack.pop(), self.stack.pop()
        if type(name) is not str or type(module) is not str:
            raise CorruptBundle("STACK_GLOBAL needs two strings")
        self.append(self.find_class(module, name))

    # --- calling and constructing ------------------------------------------------------------

    def load_reduce(self):
        args = self.stack.pop()
        entry = self.stack[-1]
        if not isinstance(entry, Global):
            raise CorruptBundle(f"the file calls a {type(entry).__name__}, which is not callable here")
        if entry.call is None:
            allowlist.refuse_use(entry, "as a function")
        if type(args) is not tuple:
            raise CorruptBundle("REDUCE needs a tuple of arguments")
        self.charge_made(args, f"a call to {entry.module}.{entry.name}")
        counts = self.keys.check(entry.hashes(*args)) if entry.hashes is not None else None
        value = entry.call(*args)
        if counts:
            self.keys.remember(value, counts)
        self.stack[-1] = value

    def charge_made(self, value, what):
        """Charge what a call may make from ``value`` before it is made."""
        self.budget.charge_made(made_by(value, limit=self.budget.made_room()), what)

    def load_newobj(self):
        args = self.stack.pop()
        entry = self.stack.pop()
        if not isinstance(entry, Global):
            raise CorruptBundle(f"the file constructs a {type(entry).__name__}, which is not a class here")
        if entry.new is None:
            allowlist.refuse_use(entry, "as a class to construct")
        if args != ():
            allowlist.refuse_use(entry, "with constructor arguments")
        self.append(entry.new())

    def load_bytearray8(self):
        (size,) = struct.unpack("<Q", self.read(8))
        self.budget.charge(size, "a bytearray")  # pickle allocates it before reading
        value = bytearray(size)
        self.readinto(value)
        self.append(value)

    def load_refused(self):
        raise UnsafeBundle("refused to load: the file uses an old-style constructor opcode (nothing was run)")

    def load_build(self):
        state = self.stack.pop()
        inst = self.stack[-1]
        check = allowlist.builder_for(inst)
        if check is None:
            raise CorruptBundle(f"the file sets the state of a {type(inst).__name__}, which is not allowed")
        check(inst, state, self)
        if type(inst) is NumpyArrayWrapper:
            self.stack[-1] = self.read_wrapped_array(inst)

    # --- containers: only the real ones ------------------------------------------------------

    def load_mark(self):
        if len(self.metastack) >= self.limits.max_depth:
            raise CorruptBundle(f"the pickle nests deeper than {self.limits.max_depth} marks")
        pickle._Unpickler.load_mark(self)  # type: ignore[attr-defined]

    def load_append(self):
        value = self.stack.pop()
        self._target(list).append(value)

    def load_appends(self):
        items = self.pop_mark()
        self._target(list).extend(items)

    def load_setitem(self):
        value, key = self.stack.pop(), self.stack.pop()
        target = self._target(dict)
        self.keys.check((key,), target)
        target[key] = value

    def load_setitems(self):
        items = self.pop_mark()
        target = self._target(dict)
        self.keys.check(items[::2], target)
        for i in range(0, len(items), 2):
            target[items[i]] = items[i + 1]

    def load_additems(self):
        items = self.pop_mark()
        target = self._target(set)
        self.keys.check(items, target)
        target.update(items)

    def load_dict(self):
        items = self.pop_mark()
        counts = self.keys.check(items[::2])
        value = {items[i]: items[i + 1] for i in range(0, len(items), 2)}
        self.keys.remember(value, counts)
        self.append(value)

    def load_frozenset(self):
        items = self.pop_mark()
        self.keys.check(items)
        self.append(frozenset(items))

    def load_put(self):
        index = int(self.readline()[:-1])
        if not 0 <= index < MAX_MEMO_INDEX:  # what LONG_BINPUT can spell; larger ones share hashes
            raise CorruptBundle(f"a PUT names memo slot {short_repr(index)}, outside 0..{MAX_MEMO_INDEX - 1}")
        self.memo[index] = self.stack[-1]

    def _target(self, kind):
        target = self.stack[-1]
        if not isinstance(target, kind) or type(target) not in (kind, *_SUBCLASSES.get(kind, ())):
            raise CorruptBundle(f"the pickle adds items to a {type(target).__name__}, not a {kind.__name__}")
        return target

    # --- arrays -------------------------------------------------------------------------------

    def read_wrapped_array(self, wrapper):
        """Read the array a checked joblib header announces, after charging its size."""
        dtype, shape = wrapper.dtype, wrapper.shape
        count = int(np.prod(shape, dtype=object)) if shape else 1
        nbytes = count * max(dtype.itemsize, 1)
        if dtype.hasobject:
            self.budget.charge(count * 8, f"an object array of shape {shape}")
            inner = SafeUnpickler(
                self.filename,
                self.file_handle.raw,
                budget=self.budget,
                limits=self.limits,
                allowed=_allowed_of(self.table),
                seen=self.seen,
            )
            array = inner.load()
            if type(array) is not np.ndarray or array.shape != shape or not array.dtype.hasobject:
                raise CorruptBundle(f"an object array does not match its header (shape {shape})")
            return array
        if self.mmap_mode is not None and wrapper.allow_mmap:
            left = (self.file_size or 0) - self.file_handle.tell()
            if nbytes > left:
                raise CorruptBundle(
                    f"an array of {nbytes:,} bytes is announced, but the file has {left:,} left"
                )
            return wrapper.read(self, self.ensure_native_byte_order)
        self.budget.charge(nbytes, f"an array of shape {shape} and dtype {dtype}")
        self.budget.spent -= nbytes  # refused before allocating; the reads that fill it are charged
        return wrapper.read(self, self.ensure_native_byte_order)


_SUBCLASSES = {dict: (collections.OrderedDict,)}
MAX_MEMO_INDEX = 2**32


def _allowed_of(table):
    return next(key for key, value in _TABLES.items() if value is table)


_OPCODES = {
    "GLOBAL": SafeUnpickler.load_global,
    "STACK_GLOBAL": SafeUnpickler.load_stack_global,
    "REDUCE": SafeUnpickler.load_reduce,
    "NEWOBJ": SafeUnpickler.load_newobj,
    "NEWOBJ_EX": SafeUnpickler.load_refused,
    "INST": SafeUnpickler.load_refused,
    "OBJ": SafeUnpickler.load_refused,
    "BUILD": SafeUnpickler.load_build,
    "MARK": SafeUnpickler.load_mark,
    "APPEND": SafeUnpickler.load_append,
    "APPENDS": SafeUnpickler.load_appends,
    "SETITEM": SafeUnpickler.load_setitem,
    "SETITEMS": SafeUnpickler.load_setitems,
    "ADDITEMS": SafeUnpickler.load_additems,
    "DICT": SafeUnpickler.load_dict,
    "FROZENSET": SafeUnpickler.load_frozenset,
    "PUT": SafeUnpickler.load_put,
    "BYTEARRAY8": SafeUnpickler.load_bytearray8,
    "PERSID": SafeUnpickler.load_refused,
    "BINPERSID": SafeUnpickler.load_refused,
    "EXT1": SafeUnpickler.load_refused,
    "EXT2": SafeUnpickler.load_refused,
    "EXT4": SafeUnpickler.load_refused,
}
for _name, _handler in _OPCODES.items():
    SafeUnpickler.dispatch[_opcode(_name)] = _handler


def check_depth(obj, max_depth):
    """Raise ``CorruptBundle`` if lists, tuples, dicts and sets nest deeper than ``max_depth``."""
    pending = [(obj, 1)] if isinstance(obj, _CONTAINERS) else []
    seen = set()
    while pending:
        value, depth = pending.pop()
        if id(value) in seen:
            continue
        seen.add(id(value))
        if depth > max_depth:
            raise CorruptBundle(f"the file nests containers deeper than {max_depth} levels")
        for children in (value.keys(), value.values()) if isinstance(value, dict) else (value,):
            # The common case, a big flat mapping or list, is settled by one pass in C.
            if any(issubclass(kind, _CONTAINERS) for kind in set(map(type, children))):
                pending.extend((child, depth + 1) for child in children if isinstance(child, _CONTAINERS))


# --- loading -----------------------------------------------------------------------------------


def _wrap_load_errors(load, name):
    try:
        return load()
    except BundleError:
        raise
    except RecursionError as exc:
        raise CorruptBundle(f"cannot read {name}: it nests too deeply") from exc
    except MemoryError as exc:
        raise OversizedBundle(f"cannot read {name}: it needs more memory than is available") from exc
    except Exception as exc:  # an untrusted file can make any library raise anything: all mean "bad file"
        detail = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise CorruptBundle(
            f"cannot read {name}: it is damaged or not a joblib or pickle file ({detail})"
        ) from exc


def _budget(limits, size_bytes, *, compressed):
    return Budget(
        limits.for_file(size_bytes, compressed=compressed),
        made_ratio=limits.max_made_ratio,
        made_floor_bytes=limits.made_floor_bytes,
    )


def safe_joblib_load(path, *, mmap_mode=None, allowed=NATIVE_GLOBALS, seen=None, limits=None):
    """Load a joblib file (plain or compressed) without running code it names.

    Uncompressed files are memory-mapped when ``mmap_mode`` is given; compressed ones are
    read into memory within ``limits`` (joblib cannot map them). ``seen``, a set, collects
    the globals used.
    """
    path = os.fspath(path)
    limits = limits or DEFAULT_LIMITS
    name = os.path.basename(path)

    def load():
        head = refuse_non_pickle(path)
        decompressor = decompressor_for(head)
        size = os.path.getsize(path)
        budget = _budget(limits, size, compressed=decompressor is not None)
        with open(path, "rb") as handle:
            stream: BinaryIO | DecompressingReader
            if decompressor is None:
                stream, mode = handle, mmap_mode
            else:
                stream, mode = DecompressingReader(handle, decompressor), None
            unpickler = SafeUnpickler(
                path,
                stream,
                budget=budget,
                limits=limits,
                allowed=allowed,
                seen=seen,
                mmap_mode=mode,
                file_size=size,
            )
            obj = unpickler.load()
        check_depth(obj, limits.max_depth)
        return obj

    return _wrap_load_errors(load, name)


def safe_pickle_load(path_or_bytes, *, allowed=MAPPING_GLOBALS, limits=None):
    """Load a plain pickle (an artifact ``.pkl``) without running code it names."""
    limits = limits or DEFAULT_LIMITS
    if isinstance(path_or_bytes, bytes | bytearray):
        data, name = bytes(path_or_bytes), "pickle"
    else:
        name = os.path.basename(str(path_or_bytes))
        refuse_non_pickle(path_or_bytes, name)
        data = None

    def load():
        handle = io.BytesIO(data) if data is not None else open(path_or_bytes, "rb")  # noqa: SIM115
        with handle:
            if data is None and handle.read(1) != b"\x80":
                raise IncompatibleBundle(f"{name} is compressed or not a pickle; artifact pickles are plain")
            handle.seek(0)
            size = len(data) if data is not None else os.path.getsize(path_or_bytes)
            unpickler = SafeUnpickler(
                name,
                handle,
                budget=_budget(limits, size, compressed=False),
                limits=limits,
                allowed=allowed,
            )
            obj = unpickler.load()
        check_depth(obj, limits.max_depth)
        return obj

    return _wrap_load_errors(load, name)


__all__ = [
    "MAPPING_GLOBALS",
    "NATIVE_GLOBALS",
    "SEED_GLOBALS",
    "refuse",
    "safe_joblib_load",
    "safe_pickle_load",
]
