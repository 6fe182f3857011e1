"""``python -m bench --quick --only experiments`` end to end: real gunicorn, wrk and (when reachable) PostgreSQL."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.gunicorn,
    pytest.mark.skipif(shutil.which("wrk") is None, reason="needs wrk (apt-get install wrk)"),
]


@pytest.fixture(scope="module")
def section(tmp_path_factory):
    """Run the part once with --quick in a temporary folder; return its saved section and the report."""
    folder = tmp_path_factory.mktemp("experiments-part")
    env = {**os.environ, "BENCH_DATA_DIR": str(folder / "data")}
    env.pop("DATABASE_URL", None)
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--only", "experiments", "--out", str(folder / "out")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    saved = json.loads((folder / "out" / "bench" / "experiments.json").read_text())
    assert saved["quick"] is True
    return saved["section"], folder / "out"


@pytest.mark.timeout(600)
def test_assignment_is_measured_against_the_bare_digest(section):
    found, _ = section
    calls = {call["call"]: call for call in found["data"]["calls"]}
    assert list(calls)[0] == "blake2b digest of the same bytes"
    assert {"assignment, 2 arms (Assignment.arm_index)", "assignment, 4 arms"} <= set(calls)
    assert all(0 < call["mean_us"] <= call["p99_us"] * 1.0001 for call in calls.values())
    assert "digest" in found["tables"][0]["limit"]


def test_serving_alternates_without_and_with_an_experiment_without_failures(section):
    found, out = section
    serving = found["data"]["serving"]
    assert len(serving["runs"]["without"]) == len(serving["runs"]["with"]) == found["data"]["sizes"]["pairs"]
    for run in serving["runs"]["without"] + serving["runs"]["with"] + [serving["health"]]:
        assert run["requests"] > 0 and run["non_2xx"] == 0 and run["socket_errors"] == 0
    assert "health" in found["tables"][1]["limit"]
    assert (out / "bench" / "experiments.png").stat().st_size > 1000
    assert f"## {found['title']}" in (out / "BENCHMARKS.md").read_text()


def test_events_are_all_stored_or_the_section_says_why_they_were_not_measured(section):
    found, _ = section
    events = found["data"]["events"]
    if "skipped" in events:
        assert len(found["tables"]) == 2
        assert any(note.startswith("Events: not measured") for note in found["notes"])
        return
    runs = events["runs"]["alone"] + events["runs"]["while"]
    assert all(run["requests"] > 0 and run["non_2xx"] == 0 for run in runs)
    assert events["acknowledged"] == sum(run["requests"] for run in runs) * 1000
    # Every acknowledged batch is in the table; more only by batches in flight when wrk stopped.
    assert events["acknowledged"] <= events["stored"] <= events["acknowledged"] + events["in_flight_at_most"]
    assert len(found["tables"]) == 4 and "COPY" in found["tables"][2]["limit"]


def test_the_results_read_is_timed_against_counting_the_events_once(section):
    found, _ = section
    read = found["data"]["read"]
    if "skipped" in found["data"]["events"]:
        assert read is None
        return
    assert read["events_stored"] == read["events"] == found["data"]["sizes"]["read_events"]
    assert read["impressions"] > 0 and 0 < read["served"] <= read["customers"]
    assert 0 < read["read_median_s"] <= read["read_max_s"] and read["baseline_median_s"] > 0
    assert "SELECT COUNT(*)" in found["tables"][3]["rows"][1][0]
    assert any(note.startswith("Results read after") for note in found["notes"])
