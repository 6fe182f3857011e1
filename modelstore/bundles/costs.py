"""What using a value from an untrusted file may cost: the bytes a call makes, the time a key hashes.

A pickle's memo lets a file use one value many times for the price of a two-byte reference, so
costs are charged per use, from the value, before the use:

- ``made_by``: the bytes a call may make from its arguments (copies, containers, conversions);
- ``KeyGuard``: the keys of one dict or set may share a hash at most ``max_equal_hashes`` times
  (past that every insert scans them all), and one key may cost at most ``MAX_KEY_UNITS`` to
  hash (tuples and integers do not keep their hash, and a deep tuple overflows C's stack);
- ``short_repr``: a value named in an error costs at most a few hundred characters to write out.
"""

import reprlib
import sys
from collections import Counter

import numpy as np

from .exceptions import CorruptBundle

# A container slot: the reference plus its share of the table around it.
SLOT_BYTES = 64
# How far into an argument ``made_by`` looks (an Arrow array's buffers sit four levels down).
MADE_DEPTH = 4
# A key of more than this many tuple items and 64-bit integer limbs is refused before it is hashed.
MAX_KEY_UNITS = 64
# Integers below the modulus hash to themselves: two of them share a hash only as -1 and -2.
HASH_MODULUS = sys.hash_info.modulus
# Keys whose hashes an attacker cannot make equal: text and bytes (randomised), small integers.
_RANDOM_HASH = (str, bytes, np.str_, np.bytes_)
_FREE_TYPES = frozenset({str, bytes, bool, type(None)})  # the common keys, settled without a call

_SHORT = reprlib.Repr()
_SHORT.maxlevel = 2
_SHORT.maxstring = _SHORT.maxother = _SHORT.maxlong = 40
_SHORT.maxtuple = _SHORT.maxlist = _SHORT.maxdict = _SHORT.maxset = _SHORT.maxfrozenset = 4


def short_repr(value):
    """Return a repr of ``value`` of bounded length, written out in bounded time."""
    if type(value) is int and value.bit_length() > 128:
        return f"<an integer of {value.bit_length():,} bits>"
    try:
        return _SHORT.repr(value)
    except Exception:  # a repr may refuse (a huge integer inside): name the type instead
        return f"<a {type(value).__name__}>"


def _array_bytes(value):
    if isinstance(value, np.memmap):
        return SLOT_BYTES  # a view of the file being read: nothing is made
    return value.nbytes


def _arrow_bytes(value):
    pa = sys.modules.get("pyarrow")  # a buffer exists only if a seed entry made one
    if pa is not None and isinstance(value, pa.Buffer):
        return value.size
    return None


def made_by(value, *, limit):
    """Return the bytes a call may make from ``value``, or a number past ``limit`` once it is past.

    Text, bytes and arrays count their size, containers ``SLOT_BYTES`` a slot, and the items
    of containers count too, ``MADE_DEPTH`` levels down. A value used twice counts twice (a
    call copies it twice); the walk stops as soon as the total passes ``limit``.
    """
    total = 0
    pending = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        kind = type(item)
        if kind in (bytes, bytearray, str):
            total += len(item)
        elif isinstance(item, np.ndarray):
            total += _array_bytes(item)
        elif kind in (list, tuple, dict, set, frozenset):
            total += SLOT_BYTES * len(item)
            if depth < MADE_DEPTH and total <= limit:
                children = [*item.keys(), *item.values()] if kind is dict else item
                pending.extend((child, depth + 1) for child in children)
        else:
            total += _arrow_bytes(item) or SLOT_BYTES
        if total > limit:
            return total
    return total


def _hashes_itself(key):
    """Return True if ``key``'s hash is its own value or random: no file can make many alike."""
    if isinstance(key, _RANDOM_HASH) or key is None or type(key) is bool:
        return True
    if type(key) is int or isinstance(key, np.integer):
        return -HASH_MODULUS < int(key) < HASH_MODULUS
    return False


def _hash_units(key):
    """Return what hashing ``key`` costs (tuple items and integer limbs), or more than the limit."""
    units = 0
    pending = [key]
    while pending and units <= MAX_KEY_UNITS:
        item = pending.pop()
        units += 1
        if type(item) is tuple:
            if units + len(item) > MAX_KEY_UNITS:
                return units + len(item)
            pending.extend(item)
        elif type(item) is int:
            units += item.bit_length() // 64
    return units


class KeyGuard:
    """Refuse keys that would make a dict or set slow to build, before they go in.

    Keys that hash to themselves or at random are free; the others are hashed (after their
    cost is checked) and counted per container, so keys added to one container over many
    opcodes are counted together.
    """

    def __init__(self, max_equal_hashes):
        self.max_equal_hashes = max_equal_hashes
        self.counts = {}  # id(container) -> (container, Counter of the hashes of its counted keys)

    def check(self, keys, into=None):
        """Raise ``CorruptBundle`` unless ``keys`` may go into ``into`` (a new container when None).

        Return the counts to ``remember`` for the new container.
        """
        counted = [key for key in keys if type(key) not in _FREE_TYPES]
        counted = [key for key in counted if not _hashes_itself(key)] if counted else counted
        entry = self.counts.get(id(into)) if into is not None else None
        counts = entry[1] if entry is not None else Counter()
        if not counted:
            return counts
        for key in counted:
            if _hash_units(key) > MAX_KEY_UNITS:
                raise CorruptBundle(
                    f"the file uses a key that nests more than {MAX_KEY_UNITS} values or integer "
                    f"limbs ({short_repr(key)}); it was not hashed"
                )
        for value in map(hash, counted):
            counts[value] += 1
            if counts[value] > self.max_equal_hashes:
                raise CorruptBundle(
                    f"the file puts more than {self.max_equal_hashes} keys with the same hash into one "
                    "dict or set (each would scan all the others); it was not built"
                )
        if into is not None and entry is None:
            self.remember(into, counts)
        return counts

    def remember(self, container, counts):
        """Count the keys already in a new ``container`` when more are added to it later."""
        if counts:
            self.counts[id(container)] = (container, counts)
