"""Hot swap under load: activate another version while wrk runs, then roll back.

gunicorn serves the registry on loopback while wrk asks for recommendations (precomputed and on
the fly, mixed) from keep-alive connections. One wrk run measures the p99 before; the next runs
while ``activate_model`` activates the other version one second in, and the one after while the
previous version is restored (the activating process is started ahead, so Django's start is not
in the window). Before the run every version is verified again as the registry does
(``bundle_models --verify``), and no serving process has loaded the new one. The time to swap runs from the activation's row (written in the
activation's transaction) to the latest ``loaded_at`` any worker reports for the new version (a
worker that kept the version loaded from earlier counts from its first answer with it);
failed requests are wrk's non-2xx answers and socket errors (a request slower than 2 s counts as
failed). Meanwhile a probe asks health on new connections (which worker serves what) and one
keep-alive connection asks for recommendations (the latency over time).

Across nodes: two gunicorn "nodes" (2 workers each) on one database and media folder, with small
bundles (the figure is the announcement's reaction, not load time) and 2 clients per node. With
Redis (``BENCH_REDIS_URL``, default ``redis://127.0.0.1:6379/13``; flushed) the nodes poll only
every 30 s, so the swap comes from the announcement; without it they poll every second, the
default. The figure runs from the commit to the latest ``loaded_at`` of the 4 workers.
"""

import contextlib
import http.client
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from bench import load, server
from bench.report import Chart, Section, Table

K = 10
CUSTOMERS = 4000
TARGET_SECONDS = 2.0
NODES, NODE_WORKERS, NODE_ROUNDS = 2, 2, 3
NODE_WINDOW_SECONDS = 3.0
# Activate, noting the time right after the commit, before the announcement is published.
NODE_ACTIVATE = """
import sys, time, django
django.setup()
from django.db import transaction
from modelstore import services
from modelstore.models import ModelVersion
committed = []
with transaction.atomic():
    transaction.on_commit(lambda: committed.append(time.time()))
    services.version_activate(version=ModelVersion.objects.get(pk=int(sys.argv[1])))
print(committed[0])
"""


def plan(ctx):
    """Return (scale, workers, seconds per wrk run, connections)."""
    return ("tiny", 2, 2, 4) if ctx.quick else ("10m", 4, 10, 8)


def probe_latency(port, paths, *, stop):
    """GET ``paths`` in turn on one keep-alive connection until ``stop``; return ``[(wall, ms, status)]``."""
    seen = []
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    i = 0
    while not stop.is_set():
        started = time.perf_counter()
        try:
            connection.request("GET", paths[i % len(paths)])
            response = connection.getresponse()
            response.read()
            status = response.status
        except (OSError, http.client.HTTPException):
            status = 0
            connection.close()
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        seen.append((time.time(), (time.perf_counter() - started) * 1e3, status))
        i += 1
        stop.wait(0.005)
    connection.close()
    return seen


class Background(threading.Thread):
    """Run ``function(*args, stop=...)`` in a thread until ``finish()``; keep what it returned."""

    def __init__(self, function, *args):
        super().__init__(daemon=True)
        self.function, self.args, self.stop, self.result = function, args, threading.Event(), None

    def run(self):
        self.result = self.function(*self.args, stop=self.stop)

    def finish(self):
        self.stop.set()
        self.join(60)
        return self.result


def swap_under_load(running, activator, staff, requests, folder, *, version, workers, seconds, connections):
    """Activate ``version`` half a second into a wrk run; return its figures."""
    outcome = {}

    def activate_later():
        time.sleep(0.5)
        outcome["committed"] = activator.activate(version)
        outcome["loaded"] = server.loaded_at(running.url, staff, version, workers, since=outcome["committed"])

    trigger = threading.Thread(target=activate_later)
    trigger.start()
    during = load.wrk_run(running.url, requests, seconds=seconds, connections=connections, folder=folder)
    trigger.join(300)
    if "loaded" not in outcome:
        raise RuntimeError(f"the swap to version {version} did not finish: {running.log_tail()}")
    committed = outcome["committed"]
    return {
        "version": version,
        "committed": committed,
        "seconds_to_all_workers": max(outcome["loaded"].values()) - committed,
        "during": during.as_dict(),
    }


def measure(ctx):
    """Run the swap and the roll-back under load; return the figures and the timeline."""
    from modelstore.bundles import open_bundle

    scale, workers, seconds, connections = plan(ctx)
    folder, env, ids, staff, cf_path = server.served_registry(ctx, scale)
    # A version registered here but never served: no serving process left a stamp, only the
    # verification did (as when ``import_bundle`` or an upload verifies it).
    server.forget_stamps(folder)
    server.reverify(env)
    user_ids = open_bundle(cf_path).arrays["user_ids"]
    customers = user_ids[np.random.default_rng(11).integers(0, user_ids.shape[0], CUSTOMERS)].tolist()
    requests = [
        load.get(f"/api/v1/recommendations/{c}/?k={K * (1 + i % 2)}") for i, c in enumerate(customers)
    ]
    ctx.log(f"swap: {scale}, {workers} workers, wrk {connections} connections, {seconds} s per window")
    activator = server.Activator(env)
    with contextlib.closing(activator), server.serving(env, folder, workers=workers) as running:
        server.loaded_at(running.url, staff, ids["cf-1"], workers)
        load.wrk_run(running.url, requests, seconds=1, connections=connections, folder=folder)  # warm-up
        started = time.time()
        versions = Background(server.served_versions, running.url, staff)
        latency = Background(probe_latency, running.port, [r[1] for r in requests[:200]])
        versions.start()
        latency.start()
        before = load.wrk_run(running.url, requests, seconds=seconds, connections=connections, folder=folder)
        swaps = [
            swap_under_load(
                running,
                activator,
                staff,
                requests,
                folder,
                version=version,
                workers=workers,
                seconds=seconds,
                connections=connections,
            )
            for version in (ids["cf-2"], ids["cf-1"])
        ]
        timeline = {"versions": versions.finish(), "latency": latency.finish()}
    return {
        "scale": scale,
        "workers": workers,
        "connections": connections,
        "bundle_bytes": cf_path.stat().st_size,
        "sha256_bytes_per_second": server.sha256_bytes_per_second(cf_path),
        "ids": ids,
        "started": started,
        "before": before.as_dict(),
        "swaps": swaps,
        "timeline": timeline,
    }


def node_round(folder, *, redis_url):
    """Run one activation across two nodes; return its seconds, requests and failures."""
    from tests.support.gunicorn import gunicorn, prepare, python, server_env
    from tests.support.load import RecommendationLoad

    if redis_url:
        import redis

        redis.Redis.from_url(redis_url).flushdb()
        env = server_env(folder, REDIS_URL=redis_url, HYBRIDREC_VERSION_CHECK_SECONDS=30)
    else:
        env = server_env(folder, HYBRIDREC_VERSION_CHECK_SECONDS=1)
    prepared = prepare(env, folder)
    first, second = prepared["versions"]
    reader = {"Authorization": f"Token {prepared['token']}"}
    staff = {"Authorization": f"Token {prepared['staff_token']}"}
    with contextlib.ExitStack() as stack:
        urls = [
            stack.enter_context(gunicorn(env, folder / f"node-{n}.log", workers=NODE_WORKERS, threads=2))
            for n in range(NODES)
        ]
        for url in urls:
            server.loaded_at(url, staff, first, NODE_WORKERS)
        loads = [
            stack.enter_context(
                RecommendationLoad(f"{url}/api/v1/recommendations/C0001/?k=5", reader, clients=2)
            )
            for url in urls
        ]
        wall = float(python(NODE_ACTIVATE, env, str(second)))
        threading.Event().wait(NODE_WINDOW_SECONDS)
        for node_load in loads:
            node_load.__exit__()
        times = [at for url in urls for at in server.loaded_at(url, staff, second, NODE_WORKERS).values()]
    return {
        "seconds_to_last_worker": max(times) - wall,
        "requests": sum(len(node_load.answers) + len(node_load.failures) for node_load in loads),
        "failed_requests": sum(len(node_load.failures) for node_load in loads),
    }


def redis_url():
    """Return the Redis URL for the announcement rounds, or None when that Redis does not answer."""
    url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.RedisError:
        return None
    return url


def across_nodes(ctx):
    """Return ``{mode: [round figures]}`` for the Redis announcement (when reachable) and polling."""
    modes = {"polling every 1 s (no Redis)": None}
    url = redis_url()
    if url:
        modes = {"Redis announcement (nodes poll every 30 s)": url, **modes}
    found = {}
    for mode, url in modes.items():
        ctx.log(f"swap across {NODES} nodes: {mode}, {NODE_ROUNDS} rounds")
        rounds = []
        for _ in range(NODE_ROUNDS):
            with tempfile.TemporaryDirectory(prefix="hybridrec-swap-") as folder:
                rounds.append(node_round(Path(folder), redis_url=url))
        found[mode] = rounds
    return found


def nodes_table(found):
    rows = []
    for mode, rounds in found.items():
        seconds = [r["seconds_to_last_worker"] for r in rounds]
        rows.append(
            [
                mode,
                len(rounds),
                f"{statistics.median(seconds):.3f}",
                f"{max(seconds):.3f}",
                sum(r["requests"] for r in rounds),
                sum(r["failed_requests"] for r in rounds),
            ]
        )
    return Table(
        title=f"An activation across {NODES} gunicorn nodes × {NODE_WORKERS} workers (small bundles)",
        columns=["how nodes hear of it", "rounds", "median s to last worker", "max s", "requests", "failed"],
        rows=rows,
        limit=(
            "With polling, a worker looks once a second, so the last of 4 is up to 1 s late "
            "plus its load; an announcement arrives within milliseconds of the commit."
        ),
    )


def table(result):
    before = result["before"]
    rows = [
        [
            "before (no swap)",
            "—",
            before["requests"],
            before["non_2xx"] + before["socket_errors"],
            f"{before['p50_ms']:.2f}",
            f"{before['p99_ms']:.2f}",
            "1.00",
        ]
    ]
    names = {
        result["ids"]["cf-2"]: "activate cf-2 (verified here, never served)",
        result["ids"]["cf-1"]: "roll back to cf-1",
    }
    for swap in result["swaps"]:
        during = swap["during"]
        rows.append(
            [
                names[swap["version"]],
                f"{swap['seconds_to_all_workers']:.2f}",
                during["requests"],
                during["non_2xx"] + during["socket_errors"],
                f"{during['p50_ms']:.2f}",
                f"{during['p99_ms']:.2f}",
                f"{during['p99_ms'] / before['p99_ms']:.2f}",
            ]
        )
    rate = result["sha256_bytes_per_second"]
    return Table(
        title=(
            f"Hot swap under load: {result['scale']} bundle ({result['bundle_bytes'] / 1e9:.2f} GB), "
            f"{result['workers']} workers, wrk with {result['connections']} connections"
        ),
        columns=["window", "s to every worker", "requests", "failed", "p50 ms", "p99 ms", "p99 × before"],
        rows=rows,
        limit=(
            f"A version verified on the machine opens by mmap, trusting the verification's stamp; one "
            f"verified elsewhere is hashed once first: sha256 of {result['bundle_bytes'] / 1e9:.2f} GB at "
            f"{rate / 1e6:.0f} MB/s (measured in this run) takes {result['bundle_bytes'] / rate:.1f} s."
        ),
        note=f"Target: every worker on the new version in under {TARGET_SECONDS:g} s, no failed request.",
    )


def chart(result, path):
    """The swap timeline: which version each worker served, and the latency, over time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    start = result["started"]
    figure, (upper, lower) = plt.subplots(2, 1, figsize=(10, 6), sharex=True)
    pids = sorted({pid for _, pid, _, _ in result["timeline"]["versions"]})
    labels = {version: label for label, version in result["ids"].items()}
    for lane, pid in enumerate(pids):
        points = [(at - start, version) for at, p, version, _ in result["timeline"]["versions"] if p == pid]
        for name, colour in (("cf-1", "tab:blue"), ("cf-2", "tab:orange")):
            xs = [x for x, version in points if labels.get(version) == name]
            upper.scatter(xs, [lane] * len(xs), s=6, color=colour, label=name if lane == 0 else None)
    upper.set_yticks(range(len(pids)), [f"worker {pid}" for pid in pids])
    upper.legend(loc="upper right", fontsize="small")
    upper.set_title("Swap under load: the version each worker answers with, and latency")
    xs = [at - start for at, _, _ in result["timeline"]["latency"]]
    lower.plot(xs, [ms for _, ms, _ in result["timeline"]["latency"]], linewidth=0.6)
    for swap in result["swaps"]:
        for axis in (upper, lower):
            axis.axvline(swap["committed"] - start, color="grey", linestyle="--", linewidth=0.8)
    lower.set_ylabel("ms per request (probe)")
    lower.set_xlabel("seconds since the run started (dashed: activation committed)")
    lower.set_yscale("log")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def run(ctx):
    """Measure the swap and the roll-back; return the section."""
    result = measure(ctx)
    chart(result, ctx.chart_path("swap.png"))
    nodes = {} if ctx.quick else across_nodes(ctx)
    notes = []
    for swap in result["swaps"]:
        failed = swap["during"]["non_2xx"] + swap["during"]["socket_errors"]
        met = swap["seconds_to_all_workers"] < TARGET_SECONDS and failed == 0
        notes.append(
            f"version {swap['version']}: every worker in {swap['seconds_to_all_workers']:.2f} s, "
            f"{failed} failed requests — {'met' if met else 'NOT met'}"
        )
    data = {key: value for key, value in result.items() if key != "timeline"}
    data["across_nodes"] = nodes
    return Section(
        key="swap",
        title="Hot swap under load",
        command="python -m bench --only swap",
        intro=__doc__.split("\n\n", 1)[1].replace("\n", " ").strip(),
        tables=[table(result)] + ([nodes_table(nodes)] if nodes else []),
        charts=[
            Chart(path="swap.png", alt="Per-worker version and request latency over the swap and roll-back")
        ],
        notes=notes,
        data=data,
    )
