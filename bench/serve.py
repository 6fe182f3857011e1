"""Serving benchmark: engine time per call at seed scale, gunicorn throughput, hot-swap time.

    .venv/bin/python bench/serve.py            # seed scale, about two minutes
    .venv/bin/python bench/serve.py --quick    # a tenth of the users, short runs (a smoke test)

Every number comes with a ratio against a baseline measured in the same run:

- engines: a bare numpy ``item_factors @ user_factors[u]`` plus top-k (what scoring costs
  without any of the engine's bookkeeping); target p99 under 0.5 ms for CF;
- HTTP: GET /api/v1/health/live/ on the same server with the same load generator (the cost of
  Django + DRF alone); target recommendations ≥ 0.8 × its requests per second;
- hot swap: from the activation ``activate_model`` recorded to every worker answering with the
  new version.

Data is synthesised with numpy at the seed's scale (552,782 users × 7,214 items, 64 factors,
10 precomputed recommendations and 8 interactions per user; ``bench.synthesis``) and written as
real bundles in a temporary folder, registered with ``import_bundle`` in a temporary SQLite
database and served by a real gunicorn on loopback (``bench.server``). The load generator runs in another process: ``wrk`` when it is installed, else a
small Python client with keep-alive connections in threads (``bench.load``). Every loop is bounded.
Results also go to bench/out/serve.json.
"""

import os

# One BLAS thread, as in hybridrec/gunicorn.conf.py; set before numpy is imported.
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
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

from bench import server  # noqa: E402
from bench.engine_timing import bench_engines  # noqa: E402
from bench.load import python_load, wrk_load  # noqa: E402
from bench.synthesis import SEED_FACTORS, SEED_ITEMS, SEED_USERS, synth_cb, synth_cf  # noqa: E402
from bench.tables import print_engines, print_http  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the users, short runs")
    parser.add_argument("--users", type=int, default=SEED_USERS)
    parser.add_argument("--items", type=int, default=SEED_ITEMS)
    parser.add_argument("--factors", type=int, default=SEED_FACTORS)
    parser.add_argument("--calls", type=int, default=3000, help="engine calls per row")
    parser.add_argument("--seconds", type=int, default=8, help="HTTP load per measurement")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--client", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument("--no-http", action="store_true", help="engine timings only")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    if args.quick:
        args.users, args.calls, args.seconds = args.users // 10, 1000, 3

    folder = Path(tempfile.mkdtemp(prefix="hybridrec-bench-"))
    env = server.bench_env(folder)
    server.use_django(env)
    from modelstore.bundles import write_bundle

    results = {"scale": {"users": args.users, "items": args.items, "factors": args.factors}}
    try:
        started = time.perf_counter()
        cf_arrays = synth_cf(args.users, args.items, args.factors, seed=1)
        cf_path = write_bundle(folder / "cf-1.joblib", kind="cf", arrays=cf_arrays).path
        cb_path = write_bundle(
            folder / "cb-1.joblib", kind="cb", arrays=synth_cb(cf_arrays["item_ids"], args.factors, seed=3)
        ).path
        size_mb = cf_path.stat().st_size / 1e6
        print(
            f"data: {args.users:,} users × {args.items:,} items, {args.factors} factors; "
            f"CF bundle {size_mb:.0f} MB, written in {time.perf_counter() - started:.1f} s",
            flush=True,
        )
        rows, loading = bench_engines(cf_path, cb_path, args.calls, np.random.default_rng(0))
        results.update(engines=rows, loading=loading, bundle_mb=size_mb)
        print_engines(rows, loading, args, size_mb)
        if not args.no_http:
            del cf_arrays
            cf2_path = write_bundle(
                folder / "cf-2.joblib",
                kind="cf",
                arrays=synth_cf(args.users, args.items, args.factors, seed=2),
            ).path
            results["http"] = bench_http(args, env, folder, cf_path, cf2_path, cb_path)
            print_http(results["http"], args)
    finally:
        out = BASE_DIR / "bench" / "out"
        out.mkdir(parents=True, exist_ok=True)
        (out / "serve.json").write_text(json.dumps(results, indent=2, default=str))
        if args.keep:
            print(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


def bench_http(args, env, folder, cf_path, cf2_path, cb_path):
    """Register the bundles, serve them with gunicorn; return throughput and hot-swap figures."""
    started = time.perf_counter()
    bundles = [("cf", cf_path, "cf-1"), ("cf", cf2_path, "cf-2"), ("cb", cb_path, "cb-1")]
    ids = server.register(env, bundles, active={"cf-1", "cb-1"})
    args.staff_headers = {"Authorization": f"Token {server.staff_token(env)}"}
    print(
        f"registry: 3 versions registered and verified in {time.perf_counter() - started:.1f} s "
        "(import_bundle, one process each)",
        flush=True,
    )
    use_wrk = args.client == "wrk" or (args.client == "auto" and shutil.which("wrk"))
    load = wrk_load if use_wrk else python_load
    started = time.monotonic()
    with server.serving(env, folder, workers=args.workers, threads=args.threads) as running:
        port = running.port
        ready = server.worker_versions(
            running.url, ids["cf-1"], args.workers, deadline_seconds=120, headers=args.staff_headers
        )
        if len(ready) < args.workers:
            raise SystemExit(f"bench: gunicorn workers did not all come up:\n{running.log_tail()}")
        startup = time.monotonic() - started
        rng = np.random.default_rng(5)
        customers = [f"C{u:07d}" for u in rng.integers(0, args.users, size=2000)]
        endpoints = {
            "GET /api/v1/health/live/ (baseline)": ["/api/v1/health/live/"],
            "GET /api/v1/recommendations/<id>/?k=10": [
                f"/api/v1/recommendations/{c}/?k=10" for c in customers
            ],
            "GET /api/v1/recommendations/<id>/?k=10&strategy=hybrid": [
                f"/api/v1/recommendations/{c}/?k=10&strategy=hybrid" for c in customers
            ],
        }
        for paths in endpoints.values():  # warm-up: pages, connections, CB's first load
            load(port, paths, 2, args.connections, folder)
        measured = {name: [] for name in endpoints}
        for _ in range(2):  # alternate, so drift on a shared machine hits every endpoint alike
            for name, paths in endpoints.items():
                measured[name].append(load(port, paths, args.seconds, args.connections, folder))
        throughput = {
            name: {
                key: float(np.mean([run[key] for run in runs]))
                if key != "errors"
                else sum(r[key] for r in runs)
                for key in ("rps", "p50", "p99", "errors")
            }
            for name, runs in measured.items()
        }
        swaps = {
            "activate a new version (one worker hashes the file, the others wait for its stamp)": swap(
                running, env, ids["cf-2"], args
            ),
            "roll back to the previous version (file already stamped)": swap(running, env, ids["cf-1"], args),
        }
    return {
        "client": "wrk" if use_wrk else "python",
        "startup_seconds": startup,
        "throughput": throughput,
        "swaps": swaps,
    }


def swap(running, env, version_id, args):
    """Activate ``version_id`` under load; return seconds to every worker serving it, and failures."""
    statuses, stop = [], threading.Event()

    def keep_asking():
        connection = http.client.HTTPConnection("127.0.0.1", running.port, timeout=10)
        while not stop.is_set():
            try:
                connection.request("GET", "/api/v1/recommendations/C0000001/?k=10")
                response = connection.getresponse()
                response.read()
                statuses.append(response.status)
            except (OSError, http.client.HTTPException):
                statuses.append("error")
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", running.port, timeout=10)
        connection.close()

    askers = [threading.Thread(target=keep_asking) for _ in range(4)]
    for asker in askers:
        asker.start()
    try:
        activated = server.activate(env, version_id)
        seen = server.worker_versions(running.url, version_id, args.workers, headers=args.staff_headers)
    finally:
        stop.set()
        for asker in askers:
            asker.join(30)
    failed = {"failed_requests": sum(status != 200 for status in statuses), "requests": len(statuses)}
    if len(seen) < args.workers:
        return {"seconds": None, **failed}
    return {
        "seconds": max(at for at, _ in seen.values()) - activated,
        "load_seconds": max(model["load_seconds"] for _, model in seen.values()),
        "hashed_on_load": any(model["hashed_on_load"] for _, model in seen.values()),
        **failed,
    }


if __name__ == "__main__":
    main()
