"""Load: how long until a model answers, for each way of storing the same CF model, at two scales.

Each case runs in a fresh Python process (one BLAS thread, as gunicorn's workers): the process
loads the model and answers one customer (ten items). Two figures per case: the seconds from
spawning the process to its first answer (interpreter, imports, load, answer), and the seconds
inside the process from the end of its imports to a loaded model. Ratios are against our
memory-mapped bundle in the same run. Before each case its files are read once to warm the page
cache, then read again, timed: that read is the physical limit a load that copies the bytes
cannot beat; an ``mmap`` call is the limit of one that does not.

Run alone: ``python -m bench --only load`` (``--remeasure-seed`` to time the 10 M seed bundle's
``joblib.load`` again instead of reusing the saved figure).
"""

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.data import SCALES, Scale, dataset, size_bytes
from bench.measure import mmap_open_seconds, page_cache_read_seconds
from bench.report import Chart, Context, Section, Table

ROOT = Path(__file__).resolve().parents[2]
MMAP_TARGET_SECONDS = 0.050
SEED_RATIO_TARGET = 100
# Bundles bigger than the serving budget's default (4 GiB) are opened with this budget here.
BENCH_MAX_BYTES = 64 * 1024**3

# (case, title, form): every form of the same model.
CASES = (
    ("seed-bundle", "seed bundle, joblib.load", "seed-bundle"),
    ("seed-files", "seed individual files (np.load, pickle, pandas)", "artifacts"),
    ("native", "our bundle, memory-mapped", "native"),
    ("native-lz4", "our bundle, lz4-3 (read into memory)", "native-lz4"),
    ("native-zlib", "our bundle, zlib-3 (read into memory)", "native-zlib"),
    ("native-gzip", "our bundle, gzip-3 (read into memory)", "native-gzip"),
    ("native-xz", "our bundle, xz-3 (read into memory)", "native-xz"),
)
# xz writes at about 2 MB/s here: a 10 M bundle would take most of an hour to write once.
SKIPPED_AT_10M = {"native-xz": "xz writes at about 2 MB/s on this machine (5 GB: over 40 minutes)"}
SEED_CACHE_KEY = "seed_bundle_joblib_load_10m"


def run(ctx: Context) -> Section:
    scales = [SCALES["tiny"]] if ctx.quick else [SCALES["seed"], SCALES["10m"]]
    results: dict[str, dict[str, Any]] = {}
    limits: dict[str, dict[str, float]] = {}
    reused: dict[str, Any] = {}
    for scale in scales:
        repeat = 1 if ctx.quick else 3
        results[scale.name] = {}
        for case, _title, form in CASES:
            if scale.name == "10m" and case in SKIPPED_AT_10M:
                continue
            path = dataset(scale, form, ctx)
            read = page_cache_read_seconds(path)
            cached = _cached_seed_figure(ctx, scale, case)
            if cached is not None:
                result = cached
                reused = cached
                ctx.log(f"{scale.name} {case}: reusing the figure measured {cached['measured_at']}")
            else:
                slow = scale.name == "10m" and not case.startswith("native")
                result = measure_case(case, path, repeat=1 if slow else repeat)
                result["measured_at"] = time.strftime("%Y-%m-%d", time.gmtime())
            result.update(read_seconds=read, size_bytes=size_bytes(path))
            results[scale.name][case] = result
            ctx.log(
                f"{scale.name} {case}: first answer {result['fresh_seconds']:.3f} s, "
                f"load {result['load_seconds']:.4f} s (read {read:.3f} s)"
            )
        native = dataset(scale, "native", ctx)
        limits[scale.name] = {"mmap_seconds": mmap_open_seconds(native)}
    section = Section(
        key="load",
        title="Load: seconds until a model answers",
        command="python -m bench --only load" + (" --quick" if ctx.quick else ""),
        intro=__doc__.split("\n\n")[1].replace("\n", " "),
        tables=[_table(scale, results[scale.name], limits[scale.name]) for scale in scales],
        charts=[_chart(ctx, scales, results)],
        notes=_notes(scales, results, reused),
        data={"results": results, "limits": limits},
    )
    if 10_000_000 in {scale.users for scale in scales} and "seed-bundle" in results.get("10m", {}):
        section.data[SEED_CACHE_KEY] = results["10m"]["seed-bundle"]
    return section


def _cached_seed_figure(ctx: Context, scale: Scale, case: str) -> dict[str, Any] | None:
    """Return the saved 10 M seed-bundle figure unless told to measure it again."""
    if scale.name != "10m" or case != "seed-bundle" or ctx.remeasure_seed or ctx.previous is None:
        return None
    cached = ctx.previous.data.get(SEED_CACHE_KEY)
    return dict(cached) if cached else None


def measure_case(case: str, path: Path, *, repeat: int) -> dict[str, Any]:
    """Run ``case`` in ``repeat`` fresh processes; return the medians of their figures."""
    runs = []
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }
    for _ in range(repeat):
        spawned = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "bench.parts.load", case, str(path)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"load case {case} exited {done.returncode}:\n{done.stderr[-2000:]}")
        child = json.loads(done.stdout.strip().splitlines()[-1])
        runs.append(
            {
                "fresh_seconds": child["answered_at"] - spawned,
                "load_seconds": child["loaded_at"] - child["imported_at"],
                "answer_seconds": child["answered_at"] - child["loaded_at"],
                "peak_rss_bytes": child["peak_rss_bytes"],
            }
        )
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]} | {"repeat": repeat}


def _case_in_child(case: str, path: Path) -> None:
    """In a fresh process: import, load, answer one customer; print the clock readings as JSON."""
    import resource

    if case.startswith("seed"):
        import pickle

        import joblib
        import numpy as np
        import pandas as pd
    else:
        from modelstore.bundles import Limits, open_bundle
        from recommendations.engines import CFEngine
    imported = time.monotonic()
    if case == "seed-bundle":
        model = joblib.load(path)
        customers, users, items = model["customer_mapping"], model["user_factors"], model["item_factors"]
        assert len(model["recs_df"]) > 0
    elif case == "seed-files":
        users = np.load(path / "user_factors.npy")
        items = np.load(path / "item_factors.npy")
        with open(path / "customer_mapping.pkl", "rb") as handle:
            customers = pickle.load(handle)
        with open(path / "item_mapping.pkl", "rb") as handle:
            pickle.load(handle)
        assert len(pd.read_parquet(path / "recommendations.parquet")) > 0
    else:
        bundle = open_bundle(path, limits=Limits(max_bytes=BENCH_MAX_BYTES))
        engine = CFEngine(bundle.arrays)
    loaded = time.monotonic()
    if case.startswith("seed"):
        # The seed's answer: the customer's row, a score for every item, the best ten.
        scores = items @ users[customers[next(iter(customers))]]
        top = np.argpartition(-scores, 10)[:10]
        answer = top[np.argsort(-scores[top])]
    else:
        answer = engine.recommend(str(bundle.arrays["user_ids"][0]), k=10).item_ids
    answered = time.monotonic()
    assert len(answer) == 10
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(
        json.dumps(
            {"imported_at": imported, "loaded_at": loaded, "answered_at": answered, "peak_rss_bytes": peak}
        )
    )


def _fmt_seconds(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def _table(scale: Scale, results: dict[str, Any], limits: dict[str, float]) -> Table:
    native = results["native"]
    rows = []
    for case, title, _ in CASES:
        if case not in results:
            continue
        r = results[case]
        rows.append(
            [
                title,
                f"{r['size_bytes'] / 1e6:,.0f}",
                _fmt_seconds(r["fresh_seconds"]),
                _fmt_seconds(r["load_seconds"]),
                f"{r['load_seconds'] / native['load_seconds']:,.0f}×",
                _fmt_seconds(r["read_seconds"]),
                f"{r['peak_rss_bytes'] / 1e6:,.0f}",
            ]
        )
    read = native["read_seconds"]
    return Table(
        title=f"Load at {scale.label} ({scale.recs_per_user} recommendations and "
        f"{scale.interactions_per_user} interactions per customer)",
        columns=[
            "case",
            "size MB",
            "spawn to first answer",
            "load in process",
            "load × mmapped",
            "page-cache read",
            "peak RSS MB",
        ],
        rows=rows,
        limit=(
            f"an mmap of the {native['size_bytes'] / 1e6:,.0f} MB bundle takes "
            f"{limits['mmap_seconds'] * 1e6:.0f} µs and reading its bytes from the page cache "
            f"{_fmt_seconds(read)} ({native['size_bytes'] / read / 1e9:.1f} GB/s). Our memory-mapped "
            f"open takes {_fmt_seconds(native['load_seconds'])}, {native['load_seconds'] / read:.2g}× "
            "that read: it maps the arrays and unpickles a small header, so its floor is the mmap "
            "calls, not the bytes. Every case that copies the data is bound by its own page-cache read."
        ),
        note="Median of "
        + (
            "3 processes (1 for the 10 M seed layout cases)."
            if scale.name == "10m"
            else f"{native.get('repeat', 1)} process(es)."
        ),
    )


def _notes(scales: list[Scale], results: dict[str, Any], reused: dict[str, Any]) -> list[str]:
    notes = []
    for scale in scales:
        r = results[scale.name]
        native, seed = r["native"]["load_seconds"], r["seed-bundle"]["load_seconds"]
        ratio = seed / native
        notes.append(
            f"{scale.label}: memory-mapped open {native * 1000:.1f} ms"
            + (
                f" (target < {MMAP_TARGET_SECONDS * 1000:.0f} ms: "
                f"{'met' if native < MMAP_TARGET_SECONDS else 'NOT met'})"
                if scale.name == "10m"
                else ""
            )
            + f"; joblib.load of the seed bundle {ratio:,.0f}× slower "
            f"(target ≥ {SEED_RATIO_TARGET}×: {'met' if ratio >= SEED_RATIO_TARGET else 'NOT met'})."
        )
    if reused:
        notes.append(
            f"The 10 M seed bundle's joblib.load was measured once ({reused['measured_at']}, "
            f"{reused['load_seconds']:.1f} s in process) and that figure is reused; "
            "`python -m bench --only load --remeasure-seed` measures it again."
        )
    if any(scale.name == "10m" for scale in scales):
        notes += [f"Not measured at 10 M: {case}: {why}." for case, why in SKIPPED_AT_10M.items()]
    return notes


def _chart(ctx: Context, scales: list[Scale], results: dict[str, Any]) -> Chart:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    titles = [title for case, title, _ in CASES]
    fig, ax = plt.subplots(figsize=(8, 4.2), dpi=90)
    height = 0.8 / len(scales)
    for i, scale in enumerate(scales):
        values = [results[scale.name].get(case, {}).get("load_seconds", 0) for case, _, _ in CASES]
        positions = [row + i * height for row in range(len(CASES))]
        bars = ax.barh(positions, [v if v else float("nan") for v in values], height, label=scale.label)
        for bar, value in zip(bars, values, strict=True):
            if value:
                ax.text(value * 1.1, bar.get_y() + height / 2, _fmt_seconds(value), va="center", fontsize=7)
    ax.set_xscale("log")
    ax.set_yticks([row + height * (len(scales) - 1) / 2 for row in range(len(CASES))], titles, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("seconds from the end of imports to a loaded model (log scale)")
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(axis="x", which="both", alpha=0.3)
    fig.tight_layout()
    name = "load.png"
    fig.savefig(ctx.chart_path(name))
    plt.close(fig)
    return Chart(name, "Load time by case and size, log scale")


if __name__ == "__main__":
    _case_in_child(sys.argv[1], Path(sys.argv[2]))
