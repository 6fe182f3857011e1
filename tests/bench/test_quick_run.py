"""``python -m bench --quick`` end to end: the load and build parts at tiny sizes, in a temp folder."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_quick_load_and_build_write_their_json_charts_and_report(tmp_path):
    env = {**os.environ, "BENCH_DATA_DIR": str(tmp_path / "data")}
    env.pop("DATABASE_URL", None)
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--only", "load,build", "--out", str(tmp_path / "out")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = tmp_path / "out" / "bench"
    for part in ("load", "build"):
        saved = json.loads((out / f"{part}.json").read_text())
        assert saved["quick"] is True
        assert saved["section"]["tables"][0]["rows"], part
        assert (out / f"{part}.png").stat().st_size > 1000
    load = json.loads((out / "load.json").read_text())["section"]["data"]["results"]["tiny"]
    assert set(load) == {
        "seed-bundle",
        "seed-files",
        "native",
        "native-lz4",
        "native-zlib",
        "native-gzip",
        "native-xz",
    }
    assert all(case["load_seconds"] > 0 for case in load.values())
    report = (tmp_path / "out" / "BENCHMARKS.md").read_text()
    assert "## Load" in report and "## Build" in report and "![" in report
