"""A bounded fuzz of the safe loader: random opcode streams and mutations of real bundles.

Whatever the bytes, ``load_any`` either refuses with the bundle error family or returns arrays
within the budget; it never writes a file and never raises anything else. Examples are
derandomized (the same every run) and capped by ``HYBRIDREC_FUZZ_EXAMPLES`` (default 200 per
strategy).
"""

import gzip
import os
import pickle
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelstore.bundles import BundleError, Limits, load_any, write_bundle
from modelstore.bundles.allowlist import SEED
from tests import factories

from .hostile import fragment, glob

EXAMPLES = int(os.environ.get("HYBRIDREC_FUZZ_EXAMPLES", "200"))
LIMITS = Limits(max_bytes=64 * 1024**2, ratio_floor_bytes=16 * 1024**2)
FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Opcodes with plausible arguments, allowed and refused globals, and lengths that lie.
SNIPPETS = [
    *(glob(module, name) for module, name in SEED),
    glob("os", "system"),
    glob("numpy", "memmap"),
    glob("builtins", "getattr"),
    *(
        fragment(value)
        for value in (
            0,
            1,
            -1,
            2**70,
            "touch marker",
            "w+",
            b"\x00" * 8,
            (0,),
            (4,),
            (10**9,),
            (10**6, 10**6),
            [],
            {},
            None,
            True,
            1.5,
            "f8",
            "<U4",
            "O8",
        )
    ),
    *(
        bytes([op[0]])
        for op in (
            pickle.MARK,
            pickle.STOP,
            pickle.POP,
            pickle.POP_MARK,
            pickle.DUP,
            pickle.TUPLE,
            pickle.EMPTY_TUPLE,
            pickle.EMPTY_LIST,
            pickle.EMPTY_DICT,
            pickle.EMPTY_SET,
            pickle.APPEND,
            pickle.APPENDS,
            pickle.SETITEM,
            pickle.SETITEMS,
            pickle.ADDITEMS,
            pickle.REDUCE,
            pickle.BUILD,
            pickle.NEWOBJ,
            pickle.NEWOBJ_EX,
            pickle.STACK_GLOBAL,
            pickle.MEMOIZE,
            pickle.FROZENSET,
            pickle.TUPLE1,
            pickle.TUPLE2,
            pickle.TUPLE3,
            pickle.OBJ,
            pickle.INST,
            pickle.NEXT_BUFFER,
            pickle.READONLY_BUFFER,
        )
    ),
    pickle.BINGET + b"\x00",
    pickle.LONG_BINGET + b"\xff\xff\xff\x7f",
    pickle.BINBYTES8 + (2**40).to_bytes(8, "little"),
    pickle.BINUNICODE + (2**31).to_bytes(4, "little"),
    pickle.FRAME + (2**50).to_bytes(8, "little"),
    pickle.LONG4 + (2**30).to_bytes(4, "little"),
    pickle.BYTEARRAY8 + (2**33).to_bytes(8, "little"),
    pickle.EXT1 + b"\x01",
    pickle.PERSID + b"x\n",
]

opcode_streams = st.lists(st.sampled_from(SNIPPETS) | st.binary(max_size=6), max_size=40).map(
    lambda parts: pickle.PROTO + b"\x04" + b"".join(parts) + pickle.STOP
)


def _real_bundles():
    """A small native bundle (plain and gzip) and a seed bundle, as bytes."""
    arrays = factories.cf_array_set(n_users=6, n_items=4, n_factors=2)
    with tempfile.TemporaryDirectory() as folder:
        plain = write_bundle(Path(folder) / "b.joblib", kind="cf", arrays=arrays).path.read_bytes()
        seed = factories.write_seed_bundle(Path(folder) / "s.joblib", n_users=6, n_items=4).read_bytes()
    return [plain, gzip.compress(plain), seed]


REAL = _real_bundles()


@st.composite
def mutated_bundles(draw):
    data = bytearray(draw(st.sampled_from(REAL)))
    for _ in range(draw(st.integers(1, 6))):
        how = draw(st.sampled_from(["flip", "cut", "insert", "splice"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if how == "flip" and data:
            data[at] = draw(st.integers(0, 255))
        elif how == "cut":
            del data[at:]
        elif how == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        else:
            data[at:at] = draw(st.sampled_from(SNIPPETS))
    return bytes(data)


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    """Work in an empty folder: a file written by anything the loader ran would show up here."""
    folder = tmp_path / "sandbox"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder


def check_load(folder, data):
    path = folder / "fuzz.joblib"
    path.write_bytes(data)
    try:
        loaded = load_any(path, limits=LIMITS)
    except BundleError:
        pass
    else:
        assert all(isinstance(a, np.ndarray) for a in loaded.arrays.values())
        assert sum(a.nbytes for a in loaded.arrays.values()) <= LIMITS.max_bytes
    assert sorted(p.name for p in folder.iterdir()) == ["fuzz.joblib"], "the loader wrote a file"


@FUZZ
@given(data=opcode_streams)
def test_random_opcode_streams_are_refused_cleanly(sandbox, data):
    check_load(sandbox, data)


@FUZZ
@given(data=mutated_bundles())
def test_mutated_real_bundles_are_refused_cleanly_or_load_within_budget(sandbox, data):
    check_load(sandbox, data)
