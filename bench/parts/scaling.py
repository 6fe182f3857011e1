"""Scaling: how load time, p99 and a worker's memory grow with the number of customers.

At each size (100 k items and 64 factors throughout, 10 precomputed recommendations and 20
interactions per customer) the bundle is registered in a registry of its own, then:

- load time: a fresh Python process opens the bundle (mmap), builds the CF engine and answers one
  customer, timed inside the process after its imports; the median of three processes (page
  cache warm);
- p99: gunicorn with 2 workers, wrk with 4 connections asking precomputed and on-the-fly
  recommendations (alternately) for random customers;
- per-worker PSS: ``/proc/<pid>/smaps_rollup`` of each worker after that traffic, averaged.

The chart puts each cost against the customer count on log-log axes with the slope of a
straight-line fit of the logs (``numpy.polyfit``): 1 means the cost grows like the data, 0 that it
does not grow at all.
"""

import statistics
import sys

import numpy as np

from bench import load, server
from bench.data import Scale
from bench.report import Chart, Section, Table
from tests.support import processes

K = 10
CUSTOMERS = 4000
LOAD_RUNS = 3
FIRST_ANSWER = """
import sys, time
from modelstore.bundles import open_bundle
from recommendations.engines import CFEngine
started = time.perf_counter()
engine = CFEngine(open_bundle(sys.argv[1]).arrays)
engine.recommend(str(engine.users.ids[len(engine.users) // 2]), 10)
print(time.perf_counter() - started)
"""
QUICK_SIZES = ("tiny", Scale("tiny-x3", 60_000, 1_000))


def sizes(ctx):
    return QUICK_SIZES if ctx.quick else ("0.1m", "1m", "3m", "10m")


def load_seconds(cf_path, env, runs):
    """Return the median seconds to a first answer in ``runs`` fresh processes (after their imports)."""
    runs = [
        float(processes.run([sys.executable, "-c", FIRST_ANSWER, str(cf_path)], env).strip().splitlines()[-1])
        for _ in range(runs)
    ]
    return statistics.median(runs)


def measure_size(ctx, scale, *, seconds):
    from modelstore.bundles import open_bundle

    folder, env, ids, staff, cf_path = server.served_registry(ctx, scale, cb=False)
    arrays = open_bundle(cf_path).arrays
    users = int(arrays["user_ids"].shape[0])
    customers = arrays["user_ids"][np.random.default_rng(13).integers(0, users, CUSTOMERS)].tolist()
    requests = [
        load.get(f"/api/v1/recommendations/{c}/?k={K * (1 + i % 2)}") for i, c in enumerate(customers)
    ]
    ctx.log(f"scaling: {users:,} customers")
    figures = {
        "users": users,
        "items": int(arrays["item_ids"].shape[0]),
        "bundle_bytes": cf_path.stat().st_size,
        "load_seconds": load_seconds(cf_path, env, 1 if ctx.quick else LOAD_RUNS),
    }
    with server.serving(env, folder, workers=2) as running:
        server.loaded_at(running.url, staff, ids["cf-1"], 2)
        if not ctx.quick:
            load.wrk_run(running.url, requests, seconds=1, connections=4, folder=folder)  # warm-up
        measured = load.wrk_run(running.url, requests, seconds=seconds, connections=4, folder=folder)
        workers = [server.memory_of(pid) for pid in server.worker_pids(running.process.pid)]
    figures.update(
        p50_ms=measured.p50_ms,
        p99_ms=measured.p99_ms,
        rps=measured.rps,
        failed=measured.failed,
        worker_pss_bytes=float(np.mean([memory["pss"] for memory in workers])),
        worker_rss_bytes=float(np.mean([memory["rss"] for memory in workers])),
    )
    return figures


COSTS = {
    "load_seconds": "load s (open, engine, first answer)",
    "p99_ms": "p99 ms",
    "worker_pss_bytes": "PSS per worker, bytes",
}


def slopes(rows):
    """Return ``{cost: slope of log(cost) against log(customers)}``."""
    users = np.log([row["users"] for row in rows])
    return {cost: float(np.polyfit(users, np.log([row[cost] for row in rows]), 1)[0]) for cost in COSTS}


def table(rows, fitted):
    return Table(
        title=f"Cost against size: {rows[0]['items']:,} items × 64 factors, 2 gunicorn workers",
        columns=[
            "customers",
            "bundle GB",
            "load s",
            "p50 ms",
            "p99 ms",
            "PSS per worker MB",
            "RSS per worker MB",
            "failed",
        ],
        rows=[
            [
                f"{row['users']:,}",
                f"{row['bundle_bytes'] / 1e9:.2f}",
                f"{row['load_seconds']:.3f}",
                f"{row['p50_ms']:.2f}",
                f"{row['p99_ms']:.2f}",
                f"{row['worker_pss_bytes'] / 1e6:,.0f}",
                f"{row['worker_rss_bytes'] / 1e6:,.0f}",
                row["failed"],
            ]
            for row in rows
        ],
        limit=(
            "The bundle grows linearly with customers (slope 1); a memory-mapped open reads "
            "none of it, so load time, p99 and a worker's memory should not (slope 0). Fitted slopes: "
            + ", ".join(f"{COSTS[cost].split(' (')[0]} {slope:.2f}" for cost, slope in fitted.items())
            + "."
        ),
    )


def chart(rows, fitted, path):
    """Each cost against the customer count, log-log, with its fitted slope in the legend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    users = np.array([row["users"] for row in rows], dtype=float)
    figure, axes = plt.subplots(1, len(COSTS), figsize=(13, 4))
    for axis, (cost, label) in zip(axes, COSTS.items(), strict=True):
        values = np.array([row[cost] for row in rows], dtype=float)
        slope, intercept = np.polyfit(np.log(users), np.log(values), 1)
        axis.loglog(users, values, "o", label="measured")
        axis.loglog(users, np.exp(intercept) * users**slope, "--", label=f"fit, slope {fitted[cost]:.2f}")
        axis.set_xlabel("customers")
        axis.set_title(label, fontsize="medium")
        axis.legend(fontsize="small")
    figure.suptitle("How each cost grows with the number of customers (log-log)")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def run(ctx):
    """Measure every size; return the section."""
    seconds = 1 if ctx.quick else 5
    rows = [measure_size(ctx, scale, seconds=seconds) for scale in sizes(ctx)]
    fitted = slopes(rows)
    chart(rows, fitted, ctx.chart_path("scaling.png"))
    return Section(
        key="scaling",
        title="Scaling with the number of customers",
        command="python -m bench --only scaling",
        intro=__doc__.split("\n\n", 1)[1].strip(),
        tables=[table(rows, fitted)],
        charts=[
            Chart(path="scaling.png", alt="Load time, p99 and PSS per worker against customers, log-log")
        ],
        notes=[f"fitted slope of {COSTS[cost]}: {slope:.2f}" for cost, slope in fitted.items()],
        data={"rows": rows, "slopes": fitted},
    )
