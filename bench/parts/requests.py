"""Requests: throughput and latency per endpoint under gunicorn, next to health in the same run.

gunicorn (the product's ``hybridrec/gunicorn.conf.py``) serves a registry of its own on loopback,
with 2 and then 4 workers; ``wrk`` in another process asks each endpoint for a bounded time, the
endpoints taking turns twice so that drift on a shared machine hits them alike. Throughput is
compared with ``GET /api/v1/health/`` measured on the same server. The limit line is what the
hardware does without any web stack, in one process and one thread: every item's score for one
customer (``item_factors @ user_factors[u]``, which reads all item factors), the same with a plain
``argpartition`` top-k, and the engine's on-the-fly answer. On-the-fly requests ask for k=20,
beyond the 10 precomputed, so the engine scores every item.
"""

import json
import os
import time

import numpy as np

from bench import load, server
from bench.report import Chart, Section, Table

K = 10
CUSTOMERS = 4000
BATCH = 100
# CF throughput target (× health) and p99 targets in ms per scale.
CF_SHARE = 0.8
P99_TARGET_MS = {"seed": 20.0, "10m": 50.0}


def scales(ctx):
    """Return ``[(key, title)]`` of the scales this run measures."""
    if ctx.quick:
        return [("tiny", "a tiny scale (quick run)")]
    return [("seed", "the seed's scale"), ("10m", "10 M customers × 100 k items")]


def workers_counts(ctx):
    return (2,) if ctx.quick else (2, 4)


def endpoints(user_ids, item_ids, rng):
    """Return ``{name: [wrk requests]}`` for every endpoint, health first."""
    customers = user_ids[rng.integers(0, user_ids.shape[0], size=CUSTOMERS)].tolist()
    items = item_ids[rng.integers(0, item_ids.shape[0], size=CUSTOMERS)].tolist()
    batches = [customers[i : i + BATCH] for i in range(0, CUSTOMERS, BATCH)]
    recs = "/api/v1/recommendations/{}/?k={}"
    return {
        "health": [load.get("/api/v1/health/")],
        "CF, precomputed": [load.get(recs.format(c, K)) for c in customers],
        # k beyond the 10 precomputed: the engine tops the list up from every item's score.
        "CF, on the fly": [load.get(recs.format(c, 2 * K)) for c in customers],
        "CB, similar items": [load.get(f"/api/v1/items/{i}/similar/?k={K}") for i in items],
        "hybrid": [load.get(recs.format(c, K) + "&strategy=hybrid") for c in customers],
        f"batch of {BATCH}": [
            load.post_json("/api/v1/recommendations/batch/", {"customer_ids": b, "k": K}) for b in batches
        ],
    }


def percentiles(times_ns):
    ms = np.asarray(times_ns) / 1e6
    return {"p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99))}


def in_process(cf_path, calls=2000):
    """Return p50/p99 ms, one thread, no web stack: plain numpy scoring, and the engine on the fly.

    matvec: ``item_factors @ user_factors[u]`` alone (reading every item's factors: the limit);
    numpy: that and ``argpartition`` + ``argsort`` for the top k, as one would write it plainly;
    engine: ``CFEngine.recommend`` with k beyond the precomputed list, so it scores every item too.
    """
    from threadpoolctl import threadpool_limits

    from modelstore.bundles import open_bundle
    from recommendations.engines import CFEngine

    engine = CFEngine(open_bundle(cf_path).arrays)
    item_factors, user_factors = engine.item_factors, engine.user_factors
    rows = np.random.default_rng(7).integers(0, engine.n_users, size=calls)
    customers = engine.users.ids[rows].tolist()

    def numpy_top(u):
        scores = item_factors @ user_factors[u]
        top = np.argpartition(-scores, K)[:K]
        return top[np.argsort(-scores[top])]

    found = {}
    with threadpool_limits(1, "blas"):
        for name, call, arguments in (
            ("matvec", lambda u: item_factors @ user_factors[u], rows),
            ("numpy", numpy_top, rows),
            ("engine", lambda c: engine.recommend(c, 2 * K), customers),
        ):
            times = []
            for i, argument in enumerate(arguments):
                started = time.perf_counter_ns()
                call(argument)
                if i >= 100:  # the first calls fault the item factors in
                    times.append(time.perf_counter_ns() - started)
            found[name] = percentiles(times)
    return found


def measure(ctx, scale, *, seconds, rounds):
    """Serve ``scale`` with each worker count; return the figures as plain data."""
    from modelstore.bundles import open_bundle

    folder, env, ids, staff, cf_path = server.served_registry(ctx, scale)
    arrays = open_bundle(cf_path).arrays
    counts = {
        "users": int(arrays["user_ids"].shape[0]),
        "items": int(arrays["item_ids"].shape[0]),
        "factors": int(arrays["user_factors"].shape[1]),
        "bundle_bytes": cf_path.stat().st_size,
    }
    requests = endpoints(arrays["user_ids"], arrays["item_ids"], np.random.default_rng(5))
    del arrays
    result = {"scale": scale, "counts": counts, "in_process": in_process(cf_path), "runs": []}
    for workers in workers_counts(ctx):
        connections = 2 * workers
        ctx.log(f"requests: {scale}, {workers} workers, {connections} connections, {seconds} s per endpoint")
        with server.serving(env, folder, workers=workers) as running:
            server.worker_versions(running.url, ids["cf-1"], workers, deadline_seconds=180, headers=staff)
            if not ctx.quick:
                for batch in requests.values():  # warm-up: pages, connections, CB's first load
                    load.wrk_run(running.url, batch, seconds=1, connections=connections, folder=folder)
            measured = {name: [] for name in requests}
            for round_ in range(rounds):
                for name, batch in requests.items():
                    measured[name].append(
                        load.wrk_run(
                            running.url,
                            batch,
                            seconds=seconds,
                            connections=connections,
                            folder=folder,
                            seed=round_ + 1,
                        )
                    )
        result["runs"].append(
            {
                "workers": workers,
                "connections": connections,
                "endpoints": {name: combine(runs) for name, runs in measured.items()},
            }
        )
    return result


def combine(runs):
    """Return one endpoint's figures over its rounds: summed requests, the worst p99."""
    total = sum(run.requests for run in runs)
    seconds = sum(run.seconds for run in runs)
    return {
        "requests": total,
        "rps": total / seconds,
        "p50_ms": float(np.median([run.p50_ms for run in runs])),
        "p99_ms": max(run.p99_ms for run in runs),
        "failed": sum(run.failed for run in runs),
    }


def table(result, title):
    p99_target = P99_TARGET_MS.get(result["scale"])
    rows = []
    for run in result["runs"]:
        health = run["endpoints"]["health"]["rps"]
        for name, figures in run["endpoints"].items():
            rows.append(
                [
                    run["workers"],
                    name,
                    f"{figures['rps']:,.0f}",
                    f"{figures['rps'] / health:.2f}",
                    f"{figures['p50_ms']:.2f}",
                    f"{figures['p99_ms']:.2f}",
                    figures["failed"],
                ]
            )
    counts = result["counts"]
    found = result["in_process"]
    matvec_ms, numpy_ms, engine_ms = found["matvec"], found["numpy"], found["engine"]
    targets = (
        f" Targets: CF ≥ {CF_SHARE} × health's requests/s; p99 < {p99_target:g} ms." if p99_target else ""
    )
    return Table(
        title=(
            f"Requests at {title}: {counts['users']:,} customers × {counts['items']:,} items × "
            f"{counts['factors']} factors ({counts['bundle_bytes'] / 1e9:.2f} GB bundle)"
        ),
        columns=["workers", "endpoint", "requests/s", "× health", "p50 ms", "p99 ms", "failed"],
        rows=rows,
        limit=(
            f"One customer's scores for all {counts['items']:,} items (numpy matrix-vector "
            f"product, one thread, no web stack) take p50 {matvec_ms['p50_ms']:.3f} ms, p99 "
            f"{matvec_ms['p99_ms']:.3f} ms in this run; with a plain argpartition top-{K} "
            f"p50 {numpy_ms['p50_ms']:.3f} / p99 {numpy_ms['p99_ms']:.3f} ms; the engine's on-the-fly "
            f"answer in the same process p50 {engine_ms['p50_ms']:.3f} / p99 {engine_ms['p99_ms']:.3f} ms."
        ),
        note=(
            "2 connections per worker, each worker with the configuration's 4 threads; wrk (one thread) "
            f"on the same two cores, where other work was running too.{targets}"
        ),
    )


def verdicts(result):
    """Return plain sentences saying which targets were met."""
    target = P99_TARGET_MS.get(result["scale"])
    counts = result["counts"]
    factor_bytes = counts["items"] * counts["factors"] * 4
    lines = []
    for run in result["runs"]:
        found = run["endpoints"]
        health = found["health"]["rps"]
        for name in ("CF, precomputed", "CF, on the fly"):
            share = found[name]["rps"] / health
            p99 = found[name]["p99_ms"]
            met = share >= CF_SHARE and (target is None or p99 < target)
            line = (
                f"{result['scale']}, {run['workers']} workers, {name}: {share:.2f} × health, "
                f"p99 {p99:.1f} ms — {'met' if met else 'NOT met'}"
            )
            if name == "CF, on the fly":
                # Every such request reads every item's factors once.
                line += (
                    f"; it reads all {factor_bytes / 1e6:.1f} MB of item factors per request, "
                    f"{found[name]['rps'] * factor_bytes / 1e9:.1f} GB/s at this rate"
                )
            lines.append(line)
    return lines


def chart(results, path):
    """Throughput and p99 by endpoint, one bar per scale and worker count."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results[0]["runs"][0]["endpoints"])
    series = [
        (f"{result['scale']}, {run['workers']} workers", run["endpoints"])
        for result in results
        for run in result["runs"]
    ]
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
    width = 0.8 / len(series)
    x = np.arange(len(names))
    for i, (label, found) in enumerate(series):
        top.bar(x + i * width, [found[n]["rps"] for n in names], width, label=label)
        bottom.bar(x + i * width, [found[n]["p99_ms"] for n in names], width, label=label)
    top.set_ylabel("requests/s")
    bottom.set_ylabel("p99 ms")
    bottom.set_xticks(x + width * (len(series) - 1) / 2, names, rotation=15)
    top.legend(fontsize="small")
    top.set_title("Throughput and p99 by endpoint (gunicorn, wrk on loopback)")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def before_change_notes(ctx, results):
    """Return notes comparing this run with ``requests.before.json`` (the figures before a fix), if any.

    That file is a saved ``measure`` result at one scale, taken with the code named in its ``code``
    field; it is kept beside this part's JSON so the report can say what the change bought.
    """
    path = ctx.out_dir / "requests.before.json"
    if ctx.quick or not path.is_file():
        return []
    before = json.loads(path.read_text())
    after = next((result for result in results if result["scale"] == before["scale"]), None)
    if after is None:
        return []
    notes = []
    for old, new in zip(before["runs"], after["runs"], strict=False):
        for name in ("CF, on the fly", "hybrid"):  # the endpoints that rank every item
            was, now = old["endpoints"][name], new["endpoints"][name]
            notes.append(
                f"{before['scale']}, {new['workers']} workers, {name}: before {before['code']} "
                f"{was['rps']:,.0f} requests/s ({was['rps'] / old['endpoints']['health']['rps']:.2f} × health), "
                f"p99 {was['p99_ms']:.1f} ms; now {now['rps']:,.0f} requests/s "
                f"({now['rps'] / new['endpoints']['health']['rps']:.2f} × health), p99 {now['p99_ms']:.1f} ms"
            )
    was, now = before["in_process"]["engine"], after["in_process"]["engine"]
    notes.append(
        f"{before['scale']}, the engine on the fly in one process: before {before['code']} p50 "
        f"{was['p50_ms']:.3f} / p99 {was['p99_ms']:.3f} ms; now p50 {now['p50_ms']:.3f} / p99 {now['p99_ms']:.3f} ms"
    )
    return notes


def run(ctx):
    """Measure every scale; return the section."""
    seconds, rounds = (1, 1) if ctx.quick else (5, 2)
    results = [measure(ctx, scale, seconds=seconds, rounds=rounds) for scale, _ in scales(ctx)]
    return section(ctx, results)


def section(ctx, results):
    """Return the section (tables, chart, notes) for measured ``results``."""
    titles = dict(scales(ctx))
    chart(results, ctx.chart_path("requests.png"))
    return Section(
        key="requests",
        title="Requests per endpoint",
        command="python -m bench --only requests",
        intro=__doc__.split("\n\n", 1)[1].replace("\n", " ").strip(),
        tables=[table(result, titles.get(result["scale"], result["scale"])) for result in results],
        charts=[Chart(path="requests.png", alt="Throughput and p99 by endpoint, per scale and worker count")],
        notes=[line for result in results for line in verdicts(result)] + before_change_notes(ctx, results),
        data={"results": results, "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS")},
    )
