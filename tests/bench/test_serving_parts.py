"""``python -m bench --quick`` for the serving parts (requests, memory, swap, scaling), end to end.

Real gunicorn servers on loopback and Debian's wrk, at tiny sizes, in a temporary folder.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PARTS = ("requests", "memory", "swap", "scaling")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.gunicorn,
    pytest.mark.skipif(shutil.which("wrk") is None, reason="needs wrk (apt-get install wrk)"),
]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Run the four parts once with --quick; return ``{part: saved section}`` and the report."""
    folder = tmp_path_factory.mktemp("serving-parts")
    env = {**os.environ, "BENCH_DATA_DIR": str(folder / "data")}
    env.pop("DATABASE_URL", None)
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--only", ",".join(PARTS), "--out", str(folder / "out")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = folder / "out" / "bench"
    sections = {part: json.loads((out / f"{part}.json").read_text())["section"] for part in PARTS}
    return sections, out, (folder / "out" / "BENCHMARKS.md").read_text()


@pytest.mark.timeout(600)
def test_every_serving_part_writes_tables_charts_and_its_report_section(run):
    sections, out, report = run
    for part, section in sections.items():
        assert section["tables"] and all(table["rows"] for table in section["tables"]), part
        for chart in section["charts"]:
            assert (out / chart["path"]).stat().st_size > 1000, chart
        assert f"## {section['title']}" in report


def test_requests_measured_every_endpoint_without_failures(run):
    sections, _, _ = run
    (result,) = sections["requests"]["data"]["results"]
    (served,) = result["runs"]
    assert set(served["endpoints"]) == {
        "health",
        "CF, precomputed",
        "CF, on the fly",
        "CB, similar items",
        "hybrid",
        "batch of 100",
    }
    for name, figures in served["endpoints"].items():
        assert figures["requests"] > 0 and figures["failed"] == 0, name
        assert 0 < figures["p50_ms"] <= figures["p99_ms"], name


def test_swap_reaches_every_worker_and_back_without_failed_requests(run):
    sections, _, _ = run
    data = sections["swap"]["data"]
    assert [swap["version"] for swap in data["swaps"]] == [data["ids"]["cf-2"], data["ids"]["cf-1"]]
    for swap in data["swaps"]:
        assert 0 < swap["seconds_to_all_workers"] < 30
        assert swap["during"]["requests"] > 0
        assert swap["during"]["non_2xx"] == 0 and swap["during"]["socket_errors"] == 0


def test_memory_reads_every_worker_and_pss_never_exceeds_rss(run):
    sections, _, _ = run
    data = sections["memory"]["data"]
    workers = [memory for name, memory in data["processes"] if name.startswith("worker")]
    assert len(workers) == 2
    for memory in workers:
        assert 0 < memory["pss"] <= memory["rss"]


def test_scaling_fits_a_slope_per_cost(run):
    sections, _, _ = run
    data = sections["scaling"]["data"]
    assert [row["users"] for row in data["rows"]] == sorted(row["users"] for row in data["rows"])
    assert set(data["slopes"]) == {"load_seconds", "p99_ms", "worker_pss_bytes"}
