"""Each allowed global, fed the most abusive arguments the pickle protocol allows.

For every entry: paths, claimed sizes, huge shapes, nested reductions and itself as an
argument, called (REDUCE) and constructed (NEWOBJ, then BUILD with a hostile state). Each
use either is refused with the bundle error family or builds a small value; nothing reaches
the filesystem and nothing large is allocated.
"""

import pickle
import sys
from pathlib import Path

import numpy as np
import pytest

from modelstore.bundles import BundleError
from modelstore.bundles.allowlist import MAPPING, NATIVE, SEED
from modelstore.bundles.safe import SEED_GLOBALS, safe_joblib_load

from .hostile import Raw, call, fragment, glob, tuple_of, whole

MiB = 1024**2
ENTRIES = sorted(SEED)


def abusive_arguments(entry, marker):
    m = str(marker)
    return [
        (),
        (m,),
        (m, "w+"),
        (m, "uint8", "w+", 0, (4,)),
        (10**12,),
        (2**63, 2**63),
        ((10**6, 10**6),),
        (Raw(glob("numpy", "ndarray")), (10**6, 10**6), b"b"),
        (Raw(glob("numpy", "ndarray")), (0,), b"b"),
        (Raw(call("builtins", "bytes", 10**10)),),
        (Raw(glob(*entry)),),
        (Raw(glob(*entry)), Raw(glob(*entry))),
        ({"data": m, "dtype": "float64"},),
        (Raw(glob("pandas", "Index")), {"start": 0, "stop": 10**12, "step": 1, "dtype": "float64"}),
        (Raw(glob("pandas", "RangeIndex")), {"start": 0, "stop": 10**12, "step": 1}),
        ("large_string", 10**12, 0, 0, [None, None, None], [], None),
        (
            (
                Raw(call("pyarrow.lib", "type_for_alias", "large_string")),
                10**9,
                0,
                0,
                [None, None, None],
                [],
                None,
            ),
        ),
        ("(1000000000,)f8", False, True),
        ("O8", False, True),
        (b"\x00" * 8,),
        (m.encode(),),
    ]


HOSTILE_STATES = [
    {
        "subclass": Raw(glob("numpy", "memmap")),
        "shape": (4,),
        "order": "C",
        "dtype": "uint8",
        "allow_mmap": True,
    },
    {"_mgr": "x", "_typ": "dataframe", "attrs": {"deep": [[[[]]]]}},
    {"_pa_array": Raw(call("builtins", "bytearray", b"x")), "_dtype": None},
    (1, (10**6, 10**6), None, False, b""),
    (3, "<", None, ("a",), {"a": (None, 0)}, 10**12, 1, 0),
    {"__class__": Raw(glob("os", "system"))},
    ({}, {"__class__": Raw(glob("os", "system"))}),
]


def load(path, data):
    path.write_bytes(data)
    return safe_joblib_load(path, allowed=SEED_GLOBALS)


def small(value):
    if isinstance(value, np.ndarray):
        return value.nbytes < MiB
    return sys.getsizeof(value) < MiB


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: ".".join(e))
def test_an_allowed_global_called_with_abusive_arguments_touches_nothing(entry, tmp_path):
    marker = tmp_path / "marker"
    for args in abusive_arguments(entry, marker):
        try:
            value = load(tmp_path / "f.joblib", whole(glob(*entry) + tuple_of(*args) + pickle.REDUCE))
        except BundleError:
            continue
        finally:
            assert not marker.exists(), f"{entry} with {args!r:.80} opened {marker}"
        assert small(value), f"{entry} with {args!r:.80} built {type(value).__name__} of a claimed size"


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: ".".join(e))
def test_an_allowed_global_constructed_with_a_hostile_state_touches_nothing(entry, tmp_path):
    marker = tmp_path / "marker"
    for args in ((), (str(marker),), (10**12,)):
        for state in HOSTILE_STATES:
            data = whole(
                glob(*entry) + tuple_of(*args) + pickle.NEWOBJ + fragment_or_raw(state) + pickle.BUILD
            )
            try:
                value = load(tmp_path / "f.joblib", data)
            except BundleError:
                continue
            finally:
                assert not marker.exists()
            assert small(value)


def fragment_or_raw(state):
    if isinstance(state, dict):
        from .hostile import _setitems

        return _setitems(state)
    if isinstance(state, tuple):
        return tuple_of(*state)
    return fragment(state)


def test_memmap_and_anything_that_opens_or_runs_is_not_on_any_list():
    forbidden = {
        ("numpy", "memmap"),
        ("numpy", "load"),
        ("numpy", "fromfile"),
        ("numpy.lib.format", "open_memmap"),
        ("builtins", "getattr"),
        ("builtins", "eval"),
        ("builtins", "open"),
        ("builtins", "__import__"),
        ("os", "system"),
        ("importlib", "import_module"),
        ("pandas", "read_csv"),
        ("pandas", "read_pickle"),
    }
    for table in (NATIVE, SEED, MAPPING):
        assert not forbidden & set(table)


def test_every_allowed_global_says_why_it_is_safe_in_the_docs():
    security = (Path(__file__).resolve().parents[2] / "docs" / "SECURITY.md").read_text()
    for module, name in SEED:
        assert f"`{module}.{name}`" in security, f"{module}.{name} is not in docs/SECURITY.md"
        assert SEED[(module, name)].reason
