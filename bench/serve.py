"""Serving benchmark: engine time per call at seed scale, gunicorn throughput, hot-swap time.

    .venv/bin/python bench/serve.py            # seed scale, about two minutes
    .venv/bin/python bench/serve.py --quick    # a tenth of the users, short runs (a smoke test)

Every number comes with a ratio against a baseline measured in the same run:

- engines: a bare numpy ``item_factors @ user_factors[u]`` plus top-k (what scoring costs
  without any of the engine's bookkeeping); target p99 under 0.5 ms for CF;
- HTTP: GET /api/v1/health/live/ on the same server with the same load generator (the cost of
  Django + DRF alone); target recommendations ≥ 0.8 × its requests per second;
- hot swap: from the activation's commit to every worker answering with the new version.

Data is synthesised with numpy at the seed's scale (552,782 users × 7,214 items, 64 factors,
10 precomputed recommendations and 8 interactions per user) and written as real bundles in a
temporary folder, registered in a temporary SQLite database, and served by a real gunicorn on
loopback. The load generator runs in another process: ``wrk`` when it is installed, else a
small Python client with keep-alive connections in threads. Every loop is bounded.
Results also go to bench/out/serve.json.
"""

import os

# One BLAS thread, as in hybridrec/gunicorn.conf.py; set before numpy is imported.
for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import argparse  # noqa: E402
import http.client  # noqa: E402
import json  # noqa: E402
import multiprocessing  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

SEED_USERS, SEED_ITEMS, SEED_FACTORS = 552_782, 7_214, 64
RECS_PER_USER, INTERACTIONS_PER_USER, NEIGHBORS = 10, 8, 50
K = 10


# --- synthetic data ------------------------------------------------------------------------------


def spread_rows(rng, n_rows, per_row, n_items, stride):
    """Return int32 (n_rows, per_row): distinct item rows per row (a random start, a fixed stride)."""
    start = rng.integers(0, n_items, size=(n_rows, 1), dtype=np.int64)
    return ((start + np.arange(per_row) * stride) % n_items).astype(np.int32)


def synth_cf(n_users, n_items, n_factors, seed):
    """Return a CF array set at the given scale, quickly (no training, random but valid)."""
    from modelstore.bundles.layout import cf_arrays

    rng = np.random.default_rng(seed)
    user_ids = np.char.add("C", np.char.zfill(np.arange(n_users).astype("U7"), 7))
    item_ids = np.char.add("I", np.char.zfill(np.arange(n_items).astype("U5"), 5))
    user_factors = rng.standard_normal((n_users, n_factors), dtype=np.float32) * np.float32(0.3)
    item_factors = rng.standard_normal((n_items, n_factors), dtype=np.float32) * np.float32(0.3)
    recs = spread_rows(rng, n_users, RECS_PER_USER, n_items, 97)
    scores = -np.sort(-rng.random((n_users, RECS_PER_USER), dtype=np.float32), axis=1)
    had = np.sort(spread_rows(rng, n_users, INTERACTIONS_PER_USER, n_items, 131), axis=1)
    return cf_arrays(
        user_ids=user_ids,
        item_ids=item_ids,
        user_factors=user_factors,
        item_factors=item_factors,
        recs_indptr=np.arange(0, n_users * RECS_PER_USER + 1, RECS_PER_USER, dtype=np.int64),
        recs_indices=recs.reshape(-1),
        recs_scores=scores.reshape(-1),
        interactions_indptr=np.arange(0, n_users * INTERACTIONS_PER_USER + 1, INTERACTIONS_PER_USER),
        interactions_indices=had.reshape(-1),
    )


def synth_cb(item_ids, dims, seed):
    """Return a CB array set over ``item_ids`` with precomputed neighbours and titles."""
    from modelstore.bundles.layout import cb_arrays, l2_normalise, top_neighbors

    rng = np.random.default_rng(seed)
    vectors = l2_normalise(rng.standard_normal((item_ids.shape[0], dims), dtype=np.float32))
    indices, scores = top_neighbors(vectors @ vectors.T, NEIGHBORS)
    titles = np.char.add("PRODUCT ", np.arange(item_ids.shape[0]).astype("U5"))
    return cb_arrays(
        item_ids=item_ids,
        item_vectors=vectors,
        item_titles=titles,
        neighbor_indices=indices,
        neighbor_scores=scores,
        normalise=False,
    )


# --- engine timings -------------------------------------------------------------------------------


def percentiles_ms(times_ns):
    values = np.asarray(times_ns, dtype=np.float64) / 1e6
    return float(np.percentile(values, 50)), float(np.percentile(values, 99))


def time_calls(function, arguments, warmup=200):
    """Return (p50 ms, p99 ms) of ``function(argument)`` over ``arguments`` after a warm-up."""
    for argument in arguments[:warmup]:
        function(argument)
    times = []
    for argument in arguments:
        started = time.perf_counter_ns()
        function(argument)
        times.append(time.perf_counter_ns() - started)
    return percentiles_ms(times)


def bench_engines(cf_path, cb_path, calls, rng):
    """Return rows ``(name, p50, p99)`` with the baseline first, and the loading numbers."""
    from modelstore.bundles import file_sha256, open_bundle
    from recommendations.engines import CBEngine, CFEngine, HybridEngine
    from recommendations.serving.verified import ensure_verified

    loading = {}
    stamps = Path(tempfile.mkdtemp(prefix="stamps-", dir=cf_path.parent))
    started = time.perf_counter()
    sha256 = file_sha256(cf_path)
    loading["sha256 of the CF bundle file (first load of a version)"] = time.perf_counter() - started
    ensure_verified(cf_path, sha256, stamp_dir=stamps)
    started = time.perf_counter()
    ensure_verified(cf_path, sha256, stamp_dir=stamps)
    loading["stamp check instead (a restart)"] = time.perf_counter() - started
    started = time.perf_counter()
    bundle = open_bundle(cf_path)
    cf = CFEngine(bundle.arrays)
    cf.recommend(str(cf.users.ids[0]), K)
    loading["open bundle (mmap) + build engine + first answer"] = time.perf_counter() - started

    cb = CBEngine(open_bundle(cb_path).arrays)
    fly = CFEngine({name: array for name, array in bundle.arrays.items() if not name.startswith("recs_")})
    brute_cb = CBEngine(_without_neighbors(cb_path))
    hybrid = HybridEngine(cf, cb)

    n_users = cf.n_users
    users = [str(cf.users.ids[u]) for u in rng.integers(0, n_users, size=calls)]
    rows = [int(u) for u in rng.integers(0, n_users, size=calls)]
    items = [str(cb.items.ids[i]) for i in rng.integers(0, cb.n_items, size=calls)]
    unknown = [f"nobody-{i}" for i in range(calls)]
    item_factors, user_factors = np.asarray(cf.item_factors), np.asarray(cf.user_factors)

    def baseline(u):
        scores = item_factors @ user_factors[u]
        top = np.argpartition(-scores, K)[:K]
        return top[np.argsort(-scores[top])]

    batches = [users[i : i + 100] for i in range(0, min(calls, 2000), 100)]
    batch_p50, batch_p99 = time_calls(lambda batch: cf.recommend_batch(batch, K), batches, warmup=2)
    rows_out = [
        ("baseline: numpy item_factors @ user_factors[u] + top-k", *time_calls(baseline, rows)),
        ("CF, precomputed list", *time_calls(lambda u: cf.recommend(u, K), users)),
        ("CF, on the fly (factors, already-had left out)", *time_calls(lambda u: fly.recommend(u, K), users)),
        ("CF, unknown customer (popular)", *time_calls(lambda u: cf.recommend(u, K), unknown)),
        ("CF, batch of 100, per customer", batch_p50 / 100, batch_p99 / 100),
        ("CB, similar items (precomputed neighbours)", *time_calls(lambda i: cb.similar_items(i, K), items)),
        ("CB, similar items (all items scored)", *time_calls(lambda i: brute_cb.similar_items(i, K), items)),
        (
            "CB, for a customer (items they have)",
            *time_calls(lambda u: cb.for_items(cf.customer_items(u), K), users),
        ),
        ("hybrid, weight 0.7", *time_calls(lambda u: hybrid.recommend(u, K, weight=0.7), users)),
    ]
    return rows_out, loading


def _without_neighbors(cb_path):
    from modelstore.bundles import open_bundle

    arrays = open_bundle(cb_path).arrays
    return {name: array for name, array in arrays.items() if not name.startswith("neighbor_")}


# --- the server ---------------------------------------------------------------------------------------

REGISTER = """
import json, sys, time, django
django.setup()
from modelstore import services
from django.core.management import call_command
call_command("migrate", verbosity=0)
started = time.perf_counter()
ids = {}
for kind, path, label in json.loads(sys.argv[1]):
    version = services.version_register(path=path, kind=kind, label=label).version
    version = services.version_verify(version=version)
    assert version.status == "ready", version.error
    ids[label] = version.pk
    if label in ("cf-1", "cb-1"):
        services.version_activate(version=version)
# Health gives load times and errors to staff only.
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
staff, _ = get_user_model().objects.get_or_create(username="bench-staff", defaults={"is_staff": True})
token, _ = Token.objects.get_or_create(user=staff)
print(json.dumps({"ids": ids, "seconds": time.perf_counter() - started, "staff_token": token.key}))
"""

ACTIVATE = """
import sys, time, django
django.setup()
from modelstore import services
from modelstore.models import ModelVersion
services.version_activate(version=ModelVersion.objects.get(pk=int(sys.argv[1])))
print(time.monotonic())
"""


def django_script(script, env, *args):
    result = subprocess.run(
        [sys.executable, "-c", script, *args],
        env=env,
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"bench: a setup step failed:\n{result.stderr[-3000:]}")
    return result.stdout.strip().splitlines()[-1]


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get_json(port, path, timeout=10, headers=None):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        connection.close()


def worker_versions(port, wanted, workers, deadline_seconds=60, headers=None):
    """Poll health on fresh connections until ``workers`` pids serve ``wanted``; return {pid: first seen}."""
    seen = {}
    deadline = time.monotonic() + deadline_seconds
    while time.monotonic() < deadline and len(seen) < workers:
        try:
            status, report = get_json(port, "/api/v1/health/", headers=headers)
        except OSError:
            time.sleep(0.05)
            continue
        if status == 200 and report["models"]["cf"].get("id") == wanted:
            seen.setdefault(report["pid"], (time.monotonic(), report["models"]["cf"]))
    return seen


# --- load generators ----------------------------------------------------------------------------------


def wrk_load(port, paths, seconds, connections, folder):
    script = folder / "paths.lua"
    script.write_text(
        "local paths = {" + ",".join(json.dumps(p) for p in paths) + "}\n"
        "request = function()\n"
        '  return wrk.format("GET", paths[math.random(#paths)])\n'
        "end\n"
    )
    result = subprocess.run(
        [
            "wrk",
            f"-t{min(2, connections)}",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(script),
            f"http://127.0.0.1:{port}",
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    )
    out = result.stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    latency = {}
    for label in ("50%", "99%"):
        value, unit = re.search(rf"^\s+{re.escape(label)}\s+([\d.]+)(us|ms|s)\s*$", out, re.M).groups()
        latency[label] = float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return {
        "rps": rps,
        "p50": latency["50%"],
        "p99": latency["99%"],
        "errors": int(errors.group(1)) if errors else 0,
    }


def _python_client(port, paths, seconds, connections, queue):
    """Keep-alive GETs from ``connections`` threads for ``seconds``; put (latencies ns, errors) on ``queue``."""
    latencies, errors = [], [0]
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def client(seed):
        rng = np.random.default_rng(seed)
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        mine, failed = [], 0
        while time.monotonic() < stop_at:
            path = paths[int(rng.integers(len(paths)))]
            started = time.perf_counter_ns()
            try:
                connection.request("GET", path)
                response = connection.getresponse()
                response.read()
                if response.status != 200:
                    failed += 1
            except (OSError, http.client.HTTPException):
                failed += 1
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                continue
            mine.append(time.perf_counter_ns() - started)
        connection.close()
        with lock:
            latencies.extend(mine)
            errors[0] += failed

    threads = [threading.Thread(target=client, args=(i,)) for i in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 30)
    queue.put((latencies, errors[0]))


def python_load(port, paths, seconds, connections, folder):
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_python_client, args=(port, paths, seconds, connections, queue))
    started = time.monotonic()
    process.start()
    latencies, errors = queue.get(timeout=seconds + 60)
    elapsed = time.monotonic() - started
    process.join(30)
    p50, p99 = percentiles_ms(latencies) if latencies else (float("nan"), float("nan"))
    # The spawn start-up is not load time: use the client's own window.
    return {"rps": len(latencies) / seconds, "p50": p50, "p99": p99, "errors": errors, "wall": elapsed}


# --- the run --------------------------------------------------------------------------------------------


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
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "hybridrec.settings",
        "DATABASE_URL": f"sqlite:///{folder / 'db.sqlite3'}",
        "MEDIA_ROOT": str(folder / "media"),
        "HYBRIDREC_BUNDLE_CACHE_DIR": str(folder / "media" / "cache"),
        "HYBRIDREC_PUBLIC_API": "true",
        "HYBRIDREC_VERSION_CHECK_SECONDS": "1",
        "HYBRIDREC_THROTTLE_RECOMMENDATIONS": "100000000/min",
        "HYBRIDREC_THROTTLE_HEALTH": "100000000/min",
        "HYBRIDREC_LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(BASE_DIR),
    }
    os.environ.update({key: env[key] for key in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "MEDIA_ROOT")})
    import django

    django.setup()
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
    started = time.perf_counter()
    registered = json.loads(
        django_script(
            REGISTER,
            env,
            json.dumps(
                [["cf", str(cf_path), "cf-1"], ["cf", str(cf2_path), "cf-2"], ["cb", str(cb_path), "cb-1"]]
            ),
        )
    )
    ids = registered["ids"]
    args.staff_headers = {"Authorization": f"Token {registered['staff_token']}"}
    print(
        f"registry: 3 versions registered and verified in {time.perf_counter() - started:.1f} s", flush=True
    )
    port = free_port()
    server_env = {
        **env,
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_WORKERS": str(args.workers),
        "GUNICORN_THREADS": str(args.threads),
        "GUNICORN_LOG_LEVEL": "warning",
    }
    log = open(folder / "gunicorn.log", "w")  # noqa: SIM115 - closed in finally
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "hybridrec/gunicorn.conf.py"],
        env=server_env,
        cwd=BASE_DIR,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    use_wrk = args.client == "wrk" or (args.client == "auto" and shutil.which("wrk"))
    load = wrk_load if use_wrk else python_load
    try:
        started = time.monotonic()
        ready = worker_versions(
            port, ids["cf-1"], args.workers, deadline_seconds=120, headers=args.staff_headers
        )
        if len(ready) < args.workers:
            raise SystemExit(f"bench: gunicorn did not come up; see {folder / 'gunicorn.log'}")
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
                port, env, ids["cf-2"], args, folder
            ),
            "roll back to the previous version (file already stamped)": swap(
                port, env, ids["cf-1"], args, folder
            ),
        }
        return {
            "client": "wrk" if use_wrk else "python",
            "startup_seconds": startup,
            "throughput": throughput,
            "swaps": swaps,
        }
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(10)
        log.close()


def swap(port, env, version_id, args, folder):
    """Activate ``version_id`` under load; return seconds to every worker serving it, and failures."""
    statuses, stop = [], threading.Event()

    def keep_asking():
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        while not stop.is_set():
            try:
                connection.request("GET", "/api/v1/recommendations/C0000001/?k=10")
                response = connection.getresponse()
                response.read()
                statuses.append(response.status)
            except (OSError, http.client.HTTPException):
                statuses.append("error")
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.close()

    askers = [threading.Thread(target=keep_asking) for _ in range(4)]
    for asker in askers:
        asker.start()
    try:
        activated = float(django_script(ACTIVATE, env, str(version_id)))
        seen = worker_versions(port, version_id, args.workers, headers=args.staff_headers)
    finally:
        stop.set()
        for asker in askers:
            asker.join(30)
    if len(seen) < args.workers:
        return {
            "seconds": None,
            "failed_requests": sum(s != 200 for s in statuses),
            "requests": len(statuses),
        }
    return {
        "seconds": max(at for at, _ in seen.values()) - activated,
        "load_seconds": max(model["load_seconds"] for _, model in seen.values()),
        "hashed_on_load": any(model["hashed_on_load"] for _, model in seen.values()),
        "failed_requests": sum(status != 200 for status in statuses),
        "requests": len(statuses),
    }


# --- tables ---------------------------------------------------------------------------------------------


def table(headers, rows):
    """Print a Markdown table."""
    widths = [max(len(str(row[i])) for row in [headers, *rows]) for i in range(len(headers))]

    def line(row):
        return (
            "| " + " | ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)) + " |"
        )

    print(line(headers))
    print("|" + "|".join("-" * (width + 2) for width in widths) + "|")
    for row in rows:
        print(line(row))
    print()


def print_engines(rows, loading, args, size_mb):
    print(
        f"\nEngine time per call — {args.users:,} users × {args.items:,} items, {args.factors} factors, "
        f"k={K}, 1 BLAS thread, {args.calls:,} calls per row (memory-mapped {size_mb:.0f} MB bundle)\n"
    )
    base_p50, base_p99 = rows[0][1], rows[0][2]
    table(
        ["call", "p50 ms", "p99 ms", "p50 × baseline", "p99 × baseline"],
        [
            (name, f"{p50:.3f}", f"{p99:.3f}", f"{p50 / base_p50:.2f}", f"{p99 / base_p99:.2f}")
            for name, p50, p99 in rows
        ],
    )
    cf_p99 = rows[1][2]
    print(f"CF precomputed p99 {cf_p99:.3f} ms (target < 0.5 ms): {'met' if cf_p99 < 0.5 else 'NOT met'}\n")
    table(["loading", "seconds"], [(name, f"{seconds:.4f}") for name, seconds in loading.items()])


def print_http(http, args):
    client = "wrk" if http["client"] == "wrk" else "Python keep-alive client"
    print(
        f"HTTP — gunicorn {args.workers} workers × {args.threads} threads on loopback, {client} with "
        f"{args.connections} connections in another process, 2 × {args.seconds} s per row "
        f"(workers up and serving in {http['startup_seconds']:.2f} s)\n"
    )
    rows = list(http["throughput"].items())
    base = rows[0][1]["rps"]
    table(
        ["endpoint", "requests/s", "p50 ms", "p99 ms", "non-200", "requests/s × health"],
        [
            (
                name,
                f"{r['rps']:.0f}",
                f"{r['p50']:.2f}",
                f"{r['p99']:.2f}",
                r["errors"],
                f"{r['rps'] / base:.2f}",
            )
            for name, r in rows
        ],
    )
    ratio = rows[1][1]["rps"] / base
    print(f"recommendations at {ratio:.2f} × health (target ≥ 0.8): {'met' if ratio >= 0.8 else 'NOT met'}\n")
    table(
        ["hot swap", "seconds to every worker", "slowest load s", "failed requests during swap"],
        [
            (
                name,
                "—" if s["seconds"] is None else f"{s['seconds']:.2f}",
                f"{s.get('load_seconds', float('nan')):.3f}",
                f"{s['failed_requests']} of {s['requests']}",
            )
            for name, s in http["swaps"].items()
        ],
    )


if __name__ == "__main__":
    main()
