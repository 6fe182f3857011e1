"""Hostile kinds that cost far more than their bytes: memo reuse, shared structure, equal hashes.

A pickle's memo lets a file use one value again for a few bytes, so a small file can hand one
big value to a copying call a thousand times, or write out one list as 8**14 JSON values. Keys
that share a hash make each insert into a dict or set scan all the others: integers hash to
themselves modulo 2**61 - 1, and -1 and -2 hash alike (so do tuples built from them).
"""

import io
import pickle
import struct
import sys

import joblib

from .hostile import _good_document, fragment, glob, whole

MiB = 1024**2
# Memo slots far above the ones MEMOIZE numbers from 0, so the two never meet.
BASE_SLOT = 2**20
MODULUS = sys.hash_info.modulus
# Hashing a tuple nested this deep overflows C's stack (a crash, not an exception) on CPython 3.11.
DEEP = 200_000


def put(slot):
    return pickle.LONG_BINPUT + struct.pack("<I", BASE_SLOT + slot)


def get(slot):
    return pickle.LONG_BINGET + struct.pack("<I", BASE_SLOT + slot)


def text(value):
    data = value.encode()
    return pickle.BINUNICODE + struct.pack("<I", len(data)) + data


def raw_bytes(value):
    return pickle.BINBYTES + struct.pack("<I", len(value)) + value


def integer(value):
    """Opcodes for one integer, without a memo entry (pickle memoizes no integers)."""
    return fragment(value)


def calls_on_memo(value, module, name, *extra, times):
    """A list of ``times`` calls of ``module.name(value, *extra)``, ``value`` written once."""
    call = glob(module, name) + pickle.MARK + get(0) + b"".join(map(fragment, extra)) + pickle.TUPLE
    return whole(
        value
        + put(0)
        + pickle.POP
        + pickle.EMPTY_LIST
        + pickle.MARK
        + (call + pickle.REDUCE) * times
        + pickle.APPENDS
    )


def colliding_ints(count):
    """``count`` distinct integers that all hash to 0."""
    return [MODULUS * (i + 1) for i in range(count)]


def in_batches(items, per_batch=1000):
    for start in range(0, len(items), per_batch):
        yield items[start : start + per_batch]


def dict_with_keys(keys, setup=b""):
    """A dict of ``keys`` (opcodes each) to None, added in batches of 1,000 as pickle does."""
    body = b"".join(
        pickle.MARK + b"".join(key + pickle.NONE for key in batch) + pickle.SETITEMS
        for batch in in_batches(keys)
    )
    return whole(setup + pickle.EMPTY_DICT + body)


def list_of(items):
    return pickle.EMPTY_LIST + pickle.MARK + b"".join(items) + pickle.APPENDS


def minus_one_two_tuples(width):
    """Every tuple of ``width`` items each -1 or -2: 2**width keys with one hash."""
    keys = []
    for n in range(2**width):
        items = b"".join(get(1 + (n >> bit & 1)) for bit in range(width))
        keys.append(pickle.MARK + items + pickle.TUPLE)
    return integer(-1) + put(1) + pickle.POP + integer(-2) + put(2) + pickle.POP, keys


def shared_levels(levels, fanout, *, close, bottom=pickle.EMPTY_LIST):
    """Opcodes for ``levels`` containers, each holding the one below ``fanout`` times (no memo)."""
    ops = bottom
    for _ in range(levels):
        ops = pickle.MARK + ops + pickle.DUP * (fanout - 1) + close
    return ops


def list_dag(levels=14, fanout=8):
    return shared_levels(levels, fanout, close=pickle.LIST)


def tuple_dag(levels=14, fanout=8):
    return shared_levels(levels, fanout, close=pickle.TUPLE, bottom=pickle.EMPTY_TUPLE)


def dict_dag(levels=7, fanout=64):
    """Dicts of one key whose value lists the dict one level below ``fanout`` times."""
    ops = pickle.EMPTY_DICT
    for _ in range(levels):
        ops = (
            pickle.MARK
            + text("k")
            + pickle.MARK
            + ops
            + pickle.DUP * (fanout - 1)
            + pickle.LIST
            + pickle.DICT
        )
    return ops


SENTINEL = "shared structure goes here"


def with_raw_metadata(value_ops):
    """A real native bundle (arrays and all) whose metadata holds the value ``value_ops`` push."""
    document = _good_document()
    document = {**document, "metadata": {**document["metadata"], "shared": SENTINEL}}
    buffer = io.BytesIO()
    joblib.dump(document, buffer, protocol=3)  # protocol 3 has no frames whose lengths would change
    data = buffer.getvalue()
    written = SENTINEL.encode()
    spelled = pickle.BINUNICODE + struct.pack("<I", len(written)) + written
    assert data.count(spelled) == 1
    return data.replace(spelled, value_ops)


def kinds():
    """Return ``{kind: bytes}`` for the memo, shared-structure and equal-hash families."""
    one_mib_text = text("x" * MiB)
    ints = colliding_ints(40_000)
    ten_thousand = list_of([integer(i) for i in colliding_ints(10_000)])
    setup, minus_keys = minus_one_two_tuples(14)
    distinct = list_of([integer(i) for i in range(20_000)])
    return {
        # one value used many times through the memo, each use a copy
        "memo bytearray of text x1000": calls_on_memo(
            one_mib_text, "builtins", "bytearray", "latin1", times=1000
        ),
        "memo _codecs.encode x1000": calls_on_memo(one_mib_text, "_codecs", "encode", "latin1", times=1000),
        "memo bytearray of bytes x1000": calls_on_memo(
            raw_bytes(bytes(MiB)), "builtins", "bytearray", times=1000
        ),
        "memo frozenset of a list x1000": calls_on_memo(distinct, "builtins", "frozenset", times=1000),
        "memo set of a list x1000": calls_on_memo(distinct, "builtins", "set", times=1000),
        # keys that share a hash
        "colliding int keys": dict_with_keys([integer(i) for i in ints]),
        "colliding frozenset x200": calls_on_memo(ten_thousand, "builtins", "frozenset", times=200),
        "colliding set ADDITEMS": whole(
            pickle.EMPTY_SET
            + b"".join(
                pickle.MARK + b"".join(map(integer, batch)) + pickle.ADDITEMS for batch in in_batches(ints)
            )
        ),
        "colliding FROZENSET opcode": whole(pickle.MARK + b"".join(map(integer, ints)) + pickle.FROZENSET),
        "colliding DICT opcode": whole(
            pickle.MARK + b"".join(integer(i) + pickle.NONE for i in ints) + pickle.DICT
        ),
        "colliding OrderedDict": whole(
            glob("collections", "OrderedDict")
            + pickle.MARK
            + list_of([pickle.MARK + integer(i) + pickle.NONE + pickle.TUPLE for i in ints])
            + pickle.TUPLE
            + pickle.REDUCE
        ),
        "colliding -1 -2 tuple keys": dict_with_keys(minus_keys, setup),
        "colliding memo PUT": pickle.PROTO
        + b"\x02"
        + b"".join(pickle.NONE + pickle.PUT + b"%d\n" % i + pickle.POP for i in ints)
        + pickle.NONE
        + pickle.STOP,
        # one structure shared many times
        "metadata list DAG": with_raw_metadata(list_dag()),
        "metadata dict DAG": with_raw_metadata(dict_dag()),
        "metadata tuple DAG": with_raw_metadata(tuple_dag()),
        "tuple DAG key": whole(pickle.EMPTY_DICT + tuple_dag() + pickle.NONE + pickle.SETITEM),
        "tuple DAG in an error": whole(
            glob("numpy", "dtype") + pickle.MARK + tuple_dag() + pickle.TUPLE + pickle.REDUCE
        ),
        "deep tuple key": whole(
            pickle.EMPTY_DICT + pickle.EMPTY_TUPLE + pickle.TUPLE1 * DEEP + pickle.NONE + pickle.SETITEM
        ),
        "metadata deep tuple": with_raw_metadata(pickle.EMPTY_TUPLE + pickle.TUPLE1 * DEEP),
        "metadata deep tuple key": with_raw_metadata(
            pickle.EMPTY_DICT + pickle.EMPTY_TUPLE + pickle.TUPLE1 * DEEP + pickle.NONE + pickle.SETITEM
        ),
    }
