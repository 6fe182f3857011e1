"""The readers' budgets at the sizes reported in issue #19, with the production defaults.

Each file is read in a fresh process, which reports how far its peak resident memory rises
over the memory it held before the read, and the seconds to the outcome (printed with ``-s``; docs/SECURITY.md quotes them).
"""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests import factories

from .hostile_readers import factors_folder, gzip_of_repeats, header_bomb, spark_metadata, wide_columns

MiB = 1024**2
REPO = Path(__file__).resolve().parents[2]

READ = textwrap.dedent(
    """
    import json, sys, time
    import pandas, pyarrow.parquet, scipy.sparse  # imported before the baseline
    from modelstore.bundles import BundleError, read_artifacts
    from modelstore.bundles.spark import write_als_artifacts
    from recommendations.training.data import load_dataset
    from recommendations.training.exceptions import TrainingError
    how, path = sys.argv[1:3]
    def status(field):
        with open("/proc/self/status") as lines:
            return next(int(line.split()[1]) for line in lines if line.startswith(field)) * 1024
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")  # the peak (VmHWM) starts again from now: the imports' peak is not the read's
    before = status("VmRSS")
    started = time.perf_counter()
    try:
        if how == "csv":
            load_dataset(path)
        elif how == "cf":
            read_artifacts(path, "cf")
        else:
            write_als_artifacts(path, sys.argv[3])
        outcome = "read"
    except (BundleError, TrainingError) as exc:
        outcome = f"{type(exc).__name__}: {exc}"
    seconds = time.perf_counter() - started
    after = status("VmHWM")
    print(json.dumps({"before": before, "rise": after - before, "seconds": seconds, "outcome": outcome}))
    """
)


def measure(how, path, *extra):
    result = subprocess.run(
        [sys.executable, "-c", READ, how, str(path), *map(str, extra)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    size = (
        sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())
        if Path(path).is_dir()
        else Path(path).stat().st_size
    )
    print(
        f"{Path(path).name} ({size:,} bytes): {measured['outcome'][:90]}; "
        f"peak memory +{measured['rise'] / MiB:.1f} MiB over {measured['before'] / MiB:.0f} MiB, {measured['seconds']:.2f} s"
    )
    return measured


@pytest.mark.slow
def test_a_400_mb_header_line_in_a_408_kb_gzip_is_refused_in_a_second(tmp_path):
    path = header_bomb(tmp_path / "events.csv.gz")
    assert path.stat().st_size < 512 * 1024

    measured = measure("csv", path)

    assert measured["outcome"].startswith("TrainingError") and "line of more than" in measured["outcome"]
    assert measured["seconds"] < 1 and measured["rise"] < 64 * MiB


@pytest.mark.slow
def test_two_million_columns_are_refused_in_a_second(tmp_path):
    path = wide_columns(tmp_path / "events.csv")

    measured = measure("csv", path)

    assert measured["outcome"].startswith("TrainingError")
    assert measured["seconds"] < 1 and measured["rise"] < 64 * MiB


@pytest.mark.slow
def test_a_quoted_field_as_large_as_the_budget_allows_is_refused_at_it(tmp_path):
    # 1 GiB of text in ~1 MB: the ratio budget allows 64 MiB; the parser never sees any of it.
    path = gzip_of_repeats(
        tmp_path / "events.csv.gz", b'customer_id,item_id\nc1,"', b"x" * 63 + b"\n", 1024 * MiB, b'"\n'
    )

    measured = measure("csv", path)

    assert "budget" in measured["outcome"]
    assert measured["seconds"] < 1 and measured["rise"] < 64 * MiB


def _rows_parquet(path, rows, per_group=1_000_000):
    schema = pa.schema(
        [
            ("customer_id", pa.dictionary(pa.int32(), pa.string())),
            ("item_id", pa.dictionary(pa.int32(), pa.string())),
            ("score", pa.float32()),
        ]
    )
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, rows, per_group):
            n = min(per_group, rows - start)
            zeros = pa.array(np.zeros(n, np.int32))
            writer.write_table(
                pa.table(
                    {
                        "customer_id": pa.DictionaryArray.from_arrays(zeros, pa.array(["C0000"])),
                        "item_id": pa.DictionaryArray.from_arrays(zeros, pa.array(["I000"])),
                        "score": pa.array(np.zeros(n, np.float32)),
                    },
                    schema=schema,
                )
            )


@pytest.mark.slow
def test_a_small_parquet_of_60_million_rows_is_refused_from_its_footer(tmp_path):
    folder = factories.write_cf_folder(tmp_path / "cf")
    _rows_parquet(folder / "recommendations.parquet", 60_000_000)
    assert (folder / "recommendations.parquet").stat().st_size < 2 * MiB

    measured = measure("cf", folder)

    assert measured["outcome"].startswith("OversizedBundle") and "footer" in measured["outcome"]
    assert measured["seconds"] < 1 and measured["rise"] < 64 * MiB


@pytest.mark.slow
def test_a_spark_model_of_4096_users_and_400000_items_ranks_in_bounded_memory(tmp_path):
    folder = tmp_path / "als"
    spark_metadata(folder, rank=10)
    factors_folder(folder / "userFactors", 4096, 10)
    factors_folder(folder / "itemFactors", 400_000, 10)

    measured = measure("spark", folder, tmp_path / "out")

    # A model this size is legitimate: it is ranked in batches, never 6.1 GiB of scores at once.
    assert measured["outcome"] == "read"
    assert measured["rise"] < 512 * MiB
