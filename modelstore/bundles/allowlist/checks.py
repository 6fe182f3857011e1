"""What every allow-list entry is made of, and the argument checks they share."""

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn

import numpy as np

from ..costs import short_repr
from ..exceptions import CorruptBundle, UnsafeBundle

MAX_NDIM = 32
MAX_UNICODE_ITEMSIZE = 4 * 65536
# dtype strings numpy pickles: bool, integers, floats, complex, fixed-width text, objects.
DTYPE_STRING = re.compile(r"[<>|=]?(b1|[iu][1248]|f[248]|c(8|16)|[US]\d{0,6}|O[48]?)")
# Python values an object array (a pandas 2 text column) may hold.
OBJECT_ELEMENTS = (str, int, float, bool, type(None))


class Refused(UnsafeBundle):
    """A global was used in a way its entry does not allow."""


def refuse_use(entry: "Global", how: str) -> NoReturn:
    """Raise the error for an allowed global used in a way its entry does not permit."""
    raise Refused(
        f"refused to load: the file uses {entry.module}.{entry.name} {how}, which the allow-list "
        "does not permit (nothing in the file was run)"
    )


def refuse_marker(value, expected, role):
    if isinstance(value, Global):
        refuse_use(value, f"as {role}")
    fail(f"{role} must be {expected}, not {type(value).__name__}")


@dataclass(frozen=True)
class Global:
    """One allow-list entry: what a REDUCE (``call``) or NEWOBJ (``new``) may do with it.

    ``hashes`` returns, from a call's arguments, the values the call will hash (set members,
    dict keys), so they are checked before it runs.
    """

    module: str
    name: str
    reason: str
    call: Callable[..., Any] | None = None
    new: Callable[[], Any] | None = None
    target: str = ""
    hashes: Callable[..., Any] | None = None

    def __repr__(self):
        return f"<allowed {self.module}.{self.name}>"


def is_marker(entry, target):
    """Return True if ``entry`` is the allow-list marker named ``target`` (e.g. "numpy.ndarray")."""
    return isinstance(entry, Global) and entry.target == target


def fail(message: str) -> NoReturn:
    raise CorruptBundle(message)


def check_int(value, what, *, low=0, high=None):
    if type(value) is not int or value < low or (high is not None and value > high):
        fail(
            f"{what} must be an integer in {low}..{high if high is not None else '∞'}, not {short_repr(value)}"
        )
    return value


def check_shape(shape, what="array shape"):
    if type(shape) is not tuple or len(shape) > MAX_NDIM:
        fail(f"{what} must be a tuple of at most {MAX_NDIM} dimensions")
    return tuple(check_int(n, what) for n in shape)


def nbytes_of(shape, dtype):
    return math.prod(shape) * dtype.itemsize


def check_bytes(value, what):
    if type(value) not in (bytes, bytearray):
        fail(f"{what} must be bytes from the file, not {type(value).__name__}")
    return value


def check_dtype(value, what="dtype", *, objects=False):
    if not isinstance(value, np.dtype):
        fail(f"{what} must be a numpy dtype, not {type(value).__name__}")
    if value.fields is not None or value.subdtype is not None or value.kind not in "biufcUSO":
        fail(f"{what} {value} is not a plain numeric, text or object dtype")
    if value.hasobject and not objects:
        fail(f"{what} may not hold Python objects here")
    return value
