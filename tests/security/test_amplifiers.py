"""Files that cost far more than their bytes are refused in bounded time and memory; data that does not still loads."""

import collections
import pickle
import time
import tracemalloc

import pytest

from modelstore.bundles import BundleError, InvalidMetadata, load_any, plain_metadata
from modelstore.bundles.safe import safe_pickle_load

from .amplifiers import colliding_ints, kinds

MiB = 1024**2
KINDS = kinds()


def refused_with_cost(path):
    """Load ``path`` with the default limits; return (the refusal, CPU seconds, peak traced bytes)."""
    started = time.process_time()
    with pytest.raises(BundleError) as refused:
        load_any(path)
    seconds = time.process_time() - started
    tracemalloc.start()
    try:
        with pytest.raises(BundleError):
            load_any(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return refused.value, seconds, peak


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_file_costing_far_more_than_its_bytes_is_refused_within_a_second_and_128_mib(kind, tmp_path):
    path = tmp_path / "x.joblib"
    path.write_bytes(KINDS[kind])

    refusal, seconds, peak = refused_with_cost(path)

    print(f"{kind}: {path.stat().st_size:,} bytes, {seconds:.2f} s, peak {peak / MiB:.1f} MiB: {refusal}")
    assert seconds < 1.0
    assert peak < 128 * MiB
    assert "\n" not in str(refusal) and len(str(refusal)) < 600


def test_metadata_that_shares_one_list_14_levels_deep_is_refused_at_once():
    shared = []
    for _ in range(14):
        shared = [shared] * 8

    started = time.process_time()
    with pytest.raises(InvalidMetadata, match="262,144 bytes of JSON"):
        plain_metadata({"shared": shared})

    assert time.process_time() - started < 0.1


def test_metadata_that_shares_a_small_list_is_still_plain_json():
    row = [1, 2, 3]

    assert plain_metadata({"a": row, "b": row, "c": {"d": row}}) == {"a": row, "b": row, "c": {"d": row}}


def test_keys_that_merely_look_alike_still_load(tmp_path):
    """-1 and -2 share a hash, tuples and floats hash by value: real data of that kind loads."""
    value = {
        -1: "a",
        -2: "b",
        **{(i, -1): i for i in range(2000)},
        **{i + 0.5: i for i in range(2000)},
        **{i: i for i in range(-100_000, 100_000)},
    }
    path = tmp_path / "mapping.pkl"
    path.write_bytes(pickle.dumps(value, protocol=4))

    assert safe_pickle_load(path) == value


def test_eight_equal_hashes_load_and_nine_are_refused():
    eight, nine = colliding_ints(8), colliding_ints(9)

    assert safe_pickle_load(pickle.dumps(set(eight), protocol=4)) == set(eight)
    assert safe_pickle_load(pickle.dumps(dict.fromkeys(eight), protocol=2)) == dict.fromkeys(eight)
    with pytest.raises(BundleError, match="more than 8 keys with the same hash"):
        safe_pickle_load(pickle.dumps(dict.fromkeys(nine), protocol=4))


def test_a_value_used_a_few_times_through_the_memo_still_loads():
    text = "x" * 100_000
    value = collections.OrderedDict((f"k{i}", bytearray(text, "latin1")) for i in range(20))

    assert safe_pickle_load(pickle.dumps(value, protocol=2)) == value
