"""Memory: gunicorn workers sharing one memory-mapped bundle, by PSS and by RSS.

gunicorn serves the bundle with 4 workers; wrk sends every endpoint's requests for a while so the
workers touch the bundle's pages, then each process's ``/proc/<pid>/smaps_rollup`` is read. RSS
counts every page a process has mapped, so pages shared by four workers are counted four times;
PSS divides each page by the processes sharing it, so the sum of PSS is what the machine really
spends. One worker's baseline is measured in the same run: a worker of the same server serving a
tiny bundle after the same traffic.
"""

import numpy as np

from bench import load, server
from bench.parts.requests import endpoints
from bench.report import Chart, Section, Table

MB = 1e6
SHARE_ALLOWANCE = 1.25


def plan(ctx):
    """Return (scale, workers, seconds of traffic)."""
    return ("tiny", 2, 1) if ctx.quick else ("10m", 4, 10)


def traffic(running, arrays, folder, seconds, connections):
    """Send every endpoint's requests (health left out) for ``seconds`` in all.

    Each request on a new connection (``Connection: close``): kept-alive connections stay with the
    worker that accepted them, and a few of them could leave a worker without any traffic.
    """
    batches = endpoints(arrays["user_ids"], arrays["item_ids"], np.random.default_rng(9))
    requests = [
        (method, path, {**headers, "Connection": "close"}, body)
        for name, batch in batches.items()
        if name != "health"
        for method, path, headers, body in batch
    ]
    return load.wrk_run(running.url, requests, seconds=seconds, connections=connections, folder=folder)


def processes_memory(running):
    """Return ``[(name, memory)]`` for the master and each worker."""
    master = running.process.pid
    found = [("master", server.memory_of(master))]
    for number, pid in enumerate(server.worker_pids(master), 1):
        found.append((f"worker {number}", server.memory_of(pid)))
    return found


def serve_and_read(ctx, scale, workers, seconds):
    """Serve ``scale`` with ``workers``, send traffic, return the memory of every process."""
    from modelstore.bundles import open_bundle

    folder, env, ids, staff, cf_path = server.served_registry(ctx, scale)
    arrays = open_bundle(cf_path).arrays
    with server.serving(env, folder, workers=workers) as running:
        server.loaded_at(running.url, staff, ids["cf-1"], workers)
        sent = traffic(running, arrays, folder, seconds, 2 * workers)
        found = processes_memory(running)
    return {"bundle_bytes": cf_path.stat().st_size, "processes": found, "traffic": sent.as_dict()}


def measure(ctx):
    scale, workers, seconds = plan(ctx)
    ctx.log(f"memory: baseline worker on the tiny bundle, then {scale} with {workers} workers")
    baseline = serve_and_read(ctx, "tiny", 1, seconds)
    measured = serve_and_read(ctx, scale, workers, seconds)
    baseline_worker = next(memory for name, memory in baseline["processes"] if name != "master")
    return {"scale": scale, "workers": workers, "baseline": baseline_worker, **measured}


def totals(result):
    """Return the target arithmetic: sums over workers and the two bounds, in bytes."""
    workers = [memory for name, memory in result["processes"] if name != "master"]
    n = len(workers)
    bundle, base = result["bundle_bytes"], result["baseline"]["pss"]
    return {
        "pss": sum(memory["pss"] for memory in workers),
        "rss": sum(memory["rss"] for memory in workers),
        "unshared": n * (bundle + base),
        "target": (bundle + n * base) * SHARE_ALLOWANCE,
        "n": n,
    }


def table(result):
    rows = [
        [
            name,
            f"{memory['rss'] / MB:,.0f}",
            f"{memory['pss'] / MB:,.0f}",
            f"{memory['pss_anon'] / MB:,.0f}",
            f"{memory['pss_file'] / MB:,.0f}",
        ]
        for name, memory in result["processes"]
    ]
    sums = totals(result)
    rows.append(["workers, sum", f"{sums['rss'] / MB:,.0f}", f"{sums['pss'] / MB:,.0f}", "", ""])
    base = result["baseline"]
    rows.append(
        ["baseline worker (tiny bundle)", f"{base['rss'] / MB:,.0f}", f"{base['pss'] / MB:,.0f}", "", ""]
    )
    n = sums["n"]
    return Table(
        title=(
            f"Memory of {n} gunicorn workers serving the {result['scale']} bundle "
            f"({result['bundle_bytes'] / 1e9:.2f} GB) after {result['traffic']['requests']:,} requests"
        ),
        columns=["process", "RSS MB", "PSS MB", "PSS anon MB", "PSS file MB"],
        rows=rows,
        limit=(
            f"Without sharing, {n} × (bundle + baseline) = {sums['unshared'] / MB:,.0f} MB; with every "
            f"page shared, bundle + {n} × baseline = {sums['target'] / SHARE_ALLOWANCE / MB:,.0f} MB "
            f"(target: the PSS sum under that + 25 %, {sums['target'] / MB:,.0f} MB)."
        ),
        note=(
            "PSS file is the bundle's pages (and shared libraries), split between the processes mapping "
            "them; only pages a request touched are mapped in a worker."
        ),
    )


def chart(result, path):
    """Each process's RSS next to its PSS, PSS stacked as anonymous and file-backed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [name for name, _ in result["processes"]]
    found = [memory for _, memory in result["processes"]]
    x = np.arange(len(names))
    figure, axis = plt.subplots(figsize=(9, 5))
    axis.bar(x - 0.2, [m["rss"] / MB for m in found], 0.4, label="RSS", color="tab:grey")
    anon = [m["pss_anon"] / MB for m in found]
    axis.bar(x + 0.2, anon, 0.4, label="PSS, anonymous", color="tab:blue")
    axis.bar(
        x + 0.2,
        [m["pss_file"] / MB for m in found],
        0.4,
        bottom=anon,
        label="PSS, file-backed",
        color="tab:cyan",
    )
    axis.set_xticks(x, names)
    axis.set_ylabel("MB")
    axis.set_title(f"Workers' memory serving the {result['scale']} bundle: RSS vs PSS")
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def run(ctx):
    """Measure the workers' memory; return the section."""
    result = measure(ctx)
    chart(result, ctx.chart_path("memory.png"))
    sums = totals(result)
    met = sums["pss"] < sums["target"]
    notes = [
        f"sum of the workers' PSS {sums['pss'] / MB:,.0f} MB vs target {sums['target'] / MB:,.0f} MB — "
        f"{'met' if met else 'NOT met'}; the sum of their RSS says {sums['rss'] / MB:,.0f} MB"
    ]
    return Section(
        key="memory",
        title="Workers' memory",
        command="python -m bench --only memory",
        intro=__doc__.split("\n\n", 1)[1].replace("\n", " ").strip(),
        tables=[table(result)],
        charts=[Chart(path="memory.png", alt="RSS and PSS of the gunicorn master and each worker")],
        notes=notes,
        data=result,
    )
