"""Soak: mixed traffic against a real gunicorn for minutes, an activation every 30 s, memory watched.

    make soak                                  # 5 minutes (SOAK_SECONDS=300)
    SOAK_SECONDS=60 .venv/bin/python bench/soak.py

Traffic on loopback from a few keep-alive connections, at most ``--rps`` requests per second
in all: personalised (CF), hybrid, similar items, batch, health and the models list. Every
``--activate-every`` seconds the other of two CF versions is activated (as an operator would,
from another process). Printed at the end: requests, non-2xx by status, p50/p99, activations,
and each gunicorn worker's RSS and PSS after warm-up and at the end.

Exits 1 on any 5xx or connection error, or when a worker's memory grew beyond the bound:
RSS or PSS up by more than ``--max-growth-mb`` (default 64 MB) from after warm-up to the end.
Data is synthesised (``bench.synthesis``) in a temporary folder with its own SQLite database,
registered and activated through the management commands (``bench.server``); nothing outside the
folder is touched.
"""

import os

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import argparse  # noqa: E402
import http.client  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import server  # noqa: E402
from bench.synthesis import synth_cb, synth_cf  # noqa: E402


def worker_pids(master_pid):
    """Return the pids of the gunicorn master's worker processes."""
    children = Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()
    return sorted(int(pid) for pid in children)


def memory_mb(pid):
    """Return ``(rss, pss)`` of a process in MB, from /proc/<pid>/smaps_rollup."""
    values = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("Rss", "Pss"):
            values[name] = int(rest.split()[0]) / 1024
    return values["Rss"], values["Pss"]


def memory_table(master_pid):
    return {pid: memory_mb(pid) for pid in worker_pids(master_pid)}


class Traffic:
    """Threads that send a fixed mix of requests at a capped total rate until stopped."""

    def __init__(self, port, customers, items, *, connections, rps):
        self.port, self.customers, self.items = port, customers, items
        self.connections, self.interval = connections, connections / rps
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.statuses = Counter()
        self.by_endpoint = Counter()
        self.failures = Counter()
        self.latencies_ms = []
        self.threads = [threading.Thread(target=self.run, args=(i,), daemon=True) for i in range(connections)]

    def request(self, rng):
        customer = self.customers[rng.integers(len(self.customers))]
        draw = rng.random()
        if draw < 0.40:
            return "cf", "GET", f"/api/v1/recommendations/{customer}/?k=10", None
        if draw < 0.55:
            return "hybrid", "GET", f"/api/v1/recommendations/{customer}/?k=10&strategy=hybrid", None
        if draw < 0.70:
            item = self.items[rng.integers(len(self.items))]
            return "similar", "GET", f"/api/v1/items/{item}/similar/?k=10", None
        if draw < 0.75:
            ids = [self.customers[i] for i in rng.integers(len(self.customers), size=20)]
            body = json.dumps({"customer_ids": ids, "k": 10, "strategy": "cf"})
            return "batch", "POST", "/api/v1/recommendations/batch/", body
        if draw < 0.90:
            return "health", "GET", "/api/v1/health/", None
        return "models", "GET", "/api/v1/models/?limit=20", None

    def run(self, index):
        rng = np.random.default_rng(index)
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        next_at = time.monotonic()
        while not self.stop.is_set():
            name, method, path, body = self.request(rng)
            headers = {"Content-Type": "application/json"} if body else {}
            started = time.perf_counter()
            try:
                connection.request(method, path, body=body, headers=headers)
                response = connection.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException) as exc:
                with self.lock:
                    self.failures[type(exc).__name__] += 1
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                continue
            elapsed_ms = (time.perf_counter() - started) * 1000
            with self.lock:
                self.statuses[status] += 1
                self.by_endpoint[name] += 1
                self.latencies_ms.append(elapsed_ms)
            next_at += self.interval
            self.stop.wait(max(0.0, next_at - time.monotonic()))
        connection.close()

    def start(self):
        for thread in self.threads:
            thread.start()

    def finish(self):
        self.stop.set()
        for thread in self.threads:
            thread.join(60)

    def reset(self):
        with self.lock:
            self.statuses.clear()
            self.by_endpoint.clear()
            self.failures.clear()
            self.latencies_ms.clear()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=int(os.environ.get("SOAK_SECONDS", 300)))
    parser.add_argument("--warmup-seconds", type=int, default=20)
    parser.add_argument("--activate-every", type=float, default=30.0)
    parser.add_argument("--rps", type=float, default=200.0, help="total request rate cap")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--users", type=int, default=50_000)
    parser.add_argument("--items", type=int, default=2_000)
    parser.add_argument("--factors", type=int, default=32)
    parser.add_argument("--max-growth-mb", type=float, default=64.0)
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="hybridrec-soak-"))
    env = server.bench_env(folder)
    server.use_django(env)
    from modelstore.bundles import write_bundle

    cf_one = synth_cf(args.users, args.items, args.factors, seed=1)
    bundles = [
        ("cf", write_bundle(folder / "cf-1.joblib", kind="cf", arrays=cf_one).path, "cf-1"),
        (
            "cf",
            write_bundle(
                folder / "cf-2.joblib",
                kind="cf",
                arrays=synth_cf(args.users, args.items, args.factors, seed=2),
            ).path,
            "cf-2",
        ),
        (
            "cb",
            write_bundle(
                folder / "cb-1.joblib", kind="cb", arrays=synth_cb(cf_one["item_ids"], args.factors, 3)
            ).path,
            "cb-1",
        ),
    ]
    items = [str(i) for i in cf_one["item_ids"][:500]]
    del cf_one
    ids = server.register(env, bundles, active={"cf-1", "cb-1"})
    with server.serving(env, folder, workers=args.workers, threads=args.threads) as running:
        if (
            len(server.worker_versions(running.url, ids["cf-1"], args.workers, deadline_seconds=120))
            < args.workers
        ):
            raise SystemExit(f"soak: gunicorn workers did not all come up:\n{running.log_tail()}")
        rng = np.random.default_rng(7)
        customers = [f"C{u:07d}" for u in rng.integers(0, args.users, size=5000)] + ["UNKNOWN-1"]
        traffic = Traffic(running.port, customers, items, connections=args.connections, rps=args.rps)
        traffic.start()

        # Warm-up: pages, CB's first load, and both CF versions served once.
        order = [ids["cf-2"], ids["cf-1"]]
        for version_id in order:
            server.activate(env, version_id)
            time.sleep(args.warmup_seconds / 2)
        traffic.reset()
        before = memory_table(running.process.pid)
        print(
            f"soak: {args.seconds} s on {running.url}, {args.workers} workers × {args.threads} threads",
            flush=True,
        )

        started = time.monotonic()
        activations, next_activation, current = 0, started + args.activate_every, 0
        while (now := time.monotonic()) < started + args.seconds:
            if now >= next_activation:
                server.activate(env, order[current])
                current = 1 - current
                activations += 1
                next_activation += args.activate_every
            time.sleep(min(1.0, max(0.0, started + args.seconds - now)))
        traffic.finish()
        elapsed = time.monotonic() - started
        after = memory_table(running.process.pid)

    latencies = np.asarray(traffic.latencies_ms)
    total = int(latencies.size)
    non_2xx = {status: count for status, count in sorted(traffic.statuses.items()) if not 200 <= status < 300}
    server_errors = sum(count for status, count in non_2xx.items() if status >= 500)
    p50, p99 = np.percentile(latencies, [50, 99]) if total else (float("nan"), float("nan"))
    print(f"requests: {total:,} in {elapsed:.0f} s ({total / elapsed:.0f}/s); {dict(traffic.by_endpoint)}")
    print(f"non-2xx: {non_2xx or 'none'}; connection errors: {dict(traffic.failures) or 'none'}")
    print(f"latency: p50 {p50:.1f} ms, p99 {p99:.1f} ms; activations: {activations}")
    grown = []
    for pid in sorted(set(before) | set(after)):
        start, end = before.get(pid), after.get(pid)
        start_text = f"RSS {start[0]:.0f} MB, PSS {start[1]:.0f} MB" if start else "not running"
        end_text = f"RSS {end[0]:.0f} MB, PSS {end[1]:.0f} MB" if end else "gone"
        print(f"worker {pid}: start {start_text}; end {end_text}")
        if start is None or end is None:
            grown.append(f"worker {pid} was replaced")
        elif max(end[0] - start[0], end[1] - start[1]) > args.max_growth_mb:
            grown.append(f"worker {pid} grew by more than {args.max_growth_mb:g} MB")
    shutil.rmtree(folder, ignore_errors=True)
    problems = []
    if server_errors or traffic.failures:
        problems.append(f"{server_errors} 5xx answers, {sum(traffic.failures.values())} connection errors")
    problems += grown
    if problems:
        print("soak: FAILED: " + "; ".join(problems))
        return 1
    print(f"soak: passed (no 5xx, no worker grew by more than {args.max_growth_mb:g} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
