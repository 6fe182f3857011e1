"""Budgets before allocation: bombs and claimed sizes are refused with bounded memory."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from modelstore.bundles import CorruptBundle, Limits, OversizedBundle, load_any
from modelstore.bundles.limits import BoundedReader, Budget, DecompressingReader, decompressor_for

from .bombs import write_array_bomb, write_bytes_bomb

GiB = 1024**3
MiB = 1024**2
REPO = Path(__file__).resolve().parents[2]

# Load a file in a fresh process; report its peak resident memory before and after, in bytes.
PEAK_MEMORY = textwrap.dedent(
    """
    import json, sys
    from modelstore.bundles import BundleError, load_any
    import pandas, pyarrow  # imported before the baseline: the seed layout may need them

    def high_water():  # VmHWM starts again at exec; ru_maxrss may carry the parent's peak
        line = next(l for l in open("/proc/self/status") if l.startswith("VmHWM:"))
        return int(line.split()[1]) * 1024

    before = high_water()
    try:
        load_any(sys.argv[1])
        outcome = "loaded"
    except BundleError as exc:
        outcome = f"{type(exc).__name__}: {exc}"
    after = high_water()
    print(json.dumps({"before": before, "after": after, "outcome": outcome}))
    """
)


def peak_memory_of_loading(path):
    result = subprocess.run(
        [sys.executable, "-c", PEAK_MEMORY, str(path)], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_a_2_gib_gzip_bomb_is_refused_within_256_mb(tmp_path):
    bomb = write_array_bomb(tmp_path / "bomb.joblib.gz", 2 * GiB)
    assert bomb.stat().st_size < 8 * MiB

    measured = peak_memory_of_loading(bomb)

    assert measured["outcome"].startswith("OversizedBundle"), measured["outcome"]
    increase = measured["after"] - measured["before"]
    print(f"2 GiB gzip bomb ({bomb.stat().st_size:,} bytes): peak memory +{increase / MiB:.1f} MiB")
    assert increase < 256 * MiB


@pytest.mark.slow
def test_a_bomb_without_an_array_header_stops_at_the_ratio_budget(tmp_path):
    bomb = write_bytes_bomb(tmp_path / "bytes.joblib.gz", 256 * MiB)

    measured = peak_memory_of_loading(bomb)

    assert measured["outcome"].startswith("OversizedBundle"), measured["outcome"]
    increase = measured["after"] - measured["before"]
    print(f"256 MiB bytes bomb ({bomb.stat().st_size:,} bytes): peak memory +{increase / MiB:.1f} MiB")
    assert increase < 256 * MiB


def test_a_compressed_file_may_expand_by_the_ratio_or_to_the_floor():
    limits = Limits(max_bytes=4 * GiB, max_compression_ratio=50, ratio_floor_bytes=64 * MiB)

    assert limits.for_file(10 * MiB, compressed=True) == 500 * MiB
    assert limits.for_file(1000, compressed=True) == 64 * MiB
    assert limits.for_file(1 * GiB, compressed=True) == 4 * GiB
    assert limits.for_file(1000, compressed=False) == 4 * GiB


def test_a_claimed_length_is_refused_before_it_is_read(tmp_path):
    class Raw:
        reads = []

        def read(self, size):
            self.reads.append(size)
            return b"x" * min(size, 10)

    reader = BoundedReader(Raw(), Budget(1000), max_line_bytes=100)
    assert reader.read(10) == b"x" * 10
    with pytest.raises(OversizedBundle, match="a read of 5,000 bytes"):
        reader.read(5000)
    assert Raw.reads == [10]


def test_data_after_a_compressed_stream_is_refused_not_looped_on(tmp_path):
    import gzip
    import io

    data = gzip.compress(b"\x80\x04K\x01.") + gzip.compress(b"more")
    reader = DecompressingReader(io.BytesIO(data), decompressor_for(data))

    assert reader.read(5) == b"\x80\x04K\x01."
    with pytest.raises(CorruptBundle, match="after the end of its compressed stream"):
        reader.read(1)


def test_load_any_refuses_a_small_file_announcing_a_large_array(tmp_path, settings):
    bomb = write_array_bomb(tmp_path / "bomb.joblib.gz", 64 * MiB)

    with pytest.raises(OversizedBundle, match="an array of shape"):
        load_any(bomb, limits=Limits(max_bytes=32 * MiB))
