"""Unpickle untrusted files through an allow-list of globals.

Pickles run code: any global a pickle names can be called while it loads. Bundles and
artifact pickles come from uploads, so every global is checked against the lists below
before it is imported, and anything else stops the load with :class:`UnsafeBundle`
before a single object that the file names is built. The lists live here, never in a file.
"""

import io
import os
import pickle

from joblib.numpy_pickle import NumpyUnpickler, _validate_fileobject_and_memmap

from .exceptions import CorruptBundle, UnsafeBundle

# Plain data containers. No callables that reach attributes, imports or eval.
BUILTIN_GLOBALS = frozenset(
    {
        ("builtins", "dict"),
        ("builtins", "list"),
        ("builtins", "tuple"),
        ("builtins", "set"),
        ("builtins", "frozenset"),
        ("builtins", "bytearray"),
        ("builtins", "bytes"),
        ("builtins", "slice"),
        ("builtins", "complex"),
        ("builtins", "int"),
        ("builtins", "float"),
        ("builtins", "str"),
        ("builtins", "bool"),
        ("collections", "OrderedDict"),
        ("datetime", "datetime"),
        ("datetime", "date"),
        ("datetime", "timedelta"),
        ("datetime", "timezone"),
    }
)

# What numpy arrays, dtypes and scalars need, and joblib's array wrapper.
NUMPY_GLOBALS = frozenset(
    {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy", "memmap"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
        ("joblib.numpy_pickle", "NumpyArrayWrapper"),
    }
)

# What a pandas DataFrame needs (seed bundles), for pandas 2 (object columns) and
# pandas 3 (pyarrow-backed strings). Spelled both by public and by defining module.
PANDAS_GLOBALS = frozenset(
    {
        ("pandas", "DataFrame"),
        ("pandas", "Series"),
        ("pandas", "Index"),
        ("pandas", "RangeIndex"),
        ("pandas", "StringDtype"),
        ("pandas", "CategoricalDtype"),
        ("pandas", "Categorical"),
        ("pandas.arrays", "ArrowStringArray"),
        ("pandas.arrays", "StringArray"),
        ("pandas.core.frame", "DataFrame"),
        ("pandas.core.series", "Series"),
        ("pandas.core.indexes.base", "_new_Index"),
        ("pandas.core.indexes.base", "Index"),
        ("pandas.core.indexes.range", "RangeIndex"),
        ("pandas.core.indexes.numeric", "Int64Index"),
        ("pandas.core.internals.managers", "BlockManager"),
        ("pandas.core.internals.managers", "SingleBlockManager"),
        ("pandas.core.internals.blocks", "new_block"),
        ("pandas._libs.internals", "_unpickle_block"),
        ("pandas.core.arrays.string_", "StringDtype"),
        ("pandas.core.arrays.string_", "StringArray"),
        ("pandas.core.arrays.string_arrow", "ArrowStringArray"),
        ("pandas.core.arrays.categorical", "Categorical"),
        ("pandas.core.dtypes.dtypes", "CategoricalDtype"),
        ("pyarrow.lib", "type_for_alias"),
        ("pyarrow.lib", "py_buffer"),
        ("pyarrow.lib", "_restore_array"),
    }
)

NATIVE_GLOBALS = BUILTIN_GLOBALS | NUMPY_GLOBALS
SEED_GLOBALS = NATIVE_GLOBALS | PANDAS_GLOBALS


def _checked_restore_array(data):
    """Rebuild a pyarrow array and validate its buffers before pandas touches them."""
    import pyarrow.lib

    array = pyarrow.lib._restore_array(data)
    try:
        array.validate(full=True)
    except Exception as exc:  # pyarrow raises ArrowInvalid and friends
        raise CorruptBundle(f"invalid Arrow array in file: {exc}") from exc
    return array


def refuse(module, name):
    """Raise the error for a global outside the allow-list."""
    raise UnsafeBundle(
        f"refused to load: the file names {module}.{name}, which is not on the allow-list "
        "of data types (nothing in the file was run)"
    )


def _resolve(module, name, allowed, seen=None):
    if (module, name) not in allowed:
        refuse(module, name)
    if seen is not None:
        seen.add((module, name))
    if (module, name) == ("pyarrow.lib", "_restore_array"):
        return _checked_restore_array
    imported = __import__(module, fromlist=[name])
    return getattr(imported, name)


class SafeNumpyUnpickler(NumpyUnpickler):
    """joblib's unpickler, restricted to an allow-list of globals."""

    def __init__(self, *args, allowed=NATIVE_GLOBALS, seen=None, **kwargs):
        self.allowed = allowed
        self.seen = seen
        super().__init__(*args, **kwargs)

    def find_class(self, module, name):
        return _resolve(module, name, self.allowed, self.seen)


class SafeUnpickler(pickle.Unpickler):
    """The C unpickler, restricted to an allow-list of globals (for plain ``.pkl`` files)."""

    def __init__(self, file, *, allowed=NATIVE_GLOBALS):
        super().__init__(file)
        self.allowed = allowed

    def find_class(self, module, name):
        return _resolve(module, name, self.allowed)


def _wrap_load_errors(load, path):
    try:
        return load()
    except UnsafeBundle:
        raise
    except CorruptBundle:
        raise
    except (
        EOFError,
        pickle.UnpicklingError,
        ValueError,
        TypeError,
        KeyError,
        IndexError,
        AttributeError,
        OSError,
        UnicodeDecodeError,
        MemoryError,
    ) as exc:
        raise CorruptBundle(
            f"cannot read {os.path.basename(str(path))}: it is damaged or not a joblib or pickle file ({exc})"
        ) from exc


def safe_joblib_load(path, *, mmap_mode=None, allowed=NATIVE_GLOBALS, seen=None):
    """Load a joblib file (plain or compressed) without running code it names.

    Uncompressed files are memory-mapped when ``mmap_mode`` is given; compressed ones are
    read into memory (joblib cannot map them). ``seen``, a set, collects the globals used.
    """
    path = os.fspath(path)

    def load():
        with open(path, "rb") as handle:
            with _validate_fileobject_and_memmap(handle, path, mmap_mode) as (fobj, validated_mode):
                if isinstance(fobj, str):
                    raise CorruptBundle("file was written by joblib < 0.10, which is not supported")
                unpickler = SafeNumpyUnpickler(
                    path,
                    fobj,
                    ensure_native_byte_order=validated_mode is None,
                    mmap_mode=validated_mode,
                    allowed=allowed,
                    seen=seen,
                )
                return unpickler.load()

    return _wrap_load_errors(load, path)


def safe_pickle_load(path_or_bytes, *, allowed=BUILTIN_GLOBALS):
    """Load a plain pickle (an artifact ``.pkl``) without running code it names."""
    if isinstance(path_or_bytes, bytes | bytearray):
        return _wrap_load_errors(
            lambda: SafeUnpickler(io.BytesIO(path_or_bytes), allowed=allowed).load(), "pickle"
        )

    def load():
        with open(path_or_bytes, "rb") as handle:
            return SafeUnpickler(handle, allowed=allowed).load()

    return _wrap_load_errors(load, path_or_bytes)
