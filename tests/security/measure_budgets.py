"""Measure what refusing each memo, shared-structure and equal-hash kind costs, each in a fresh process.

Run ``python -m tests.security.measure_budgets`` from the project folder (``DJANGO_SETTINGS_MODULE``
is set for you); it prints one Markdown row per kind: file size, outcome, CPU and wall seconds
of the load, and how much the process's peak resident memory rose.
"""

import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MiB = 1024**2

# Import first (the baseline), then load once; print the costs of the load alone.
MEASURE = textwrap.dedent(
    """
    import json, sys, time
    from modelstore.bundles import BundleError, load_any

    def high_water():  # VmHWM starts again at exec; ru_maxrss may carry the parent's
        line = next(l for l in open("/proc/self/status") if l.startswith("VmHWM:"))
        return int(line.split()[1]) * 1024

    before = high_water()
    cpu, wall = time.process_time(), time.perf_counter()
    try:
        load_any(sys.argv[1])
        outcome = "loaded"
    except BundleError as exc:
        outcome = type(exc).__name__
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    after = high_water()
    print(json.dumps({"rise": after - before, "cpu": cpu, "wall": wall, "outcome": outcome}))
    """
)


def measure(path, timeout_seconds=120):
    """Return the costs of loading ``path`` in a fresh process."""
    result = subprocess.run(
        [sys.executable, "-c", MEASURE, str(path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout_seconds,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hybridrec.settings")
    import django

    django.setup()
    from .amplifiers import kinds

    print("| kind | file bytes | refused as | CPU s | wall s | peak memory rise |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        for kind, data in kinds().items():
            path = Path(folder) / "x.joblib"
            path.write_bytes(data)
            costs = measure(path)
            print(
                f"| {kind} | {len(data):,} | {costs['outcome']} | {costs['cpu']:.2f} | {costs['wall']:.2f} "
                f"| {costs['rise'] / MiB:.1f} MiB |",
                flush=True,
            )


if __name__ == "__main__":
    main()
