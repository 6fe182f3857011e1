"""Events benchmark: events per second through the batch endpoint while recommendations are served.

    .venv/bin/python bench/events.py            # about a minute
    .venv/bin/python bench/events.py --quick    # short runs (a smoke test)

POST /api/v1/events/ with batches of 1,000 events from two client processes, while ``wrk``
keeps GET /api/v1/recommendations/<id>/?k=10 busy with a 50/50 experiment running, next to
the same posting on an otherwise idle server (the baseline, measured in the same run); target
≥ 5,000 events/s. Each 202 comes after the batch's insert committed; the run then counts the
rows in the table against the events acknowledged.

The server is a real gunicorn on loopback over PostgreSQL (a fresh database, ``--database-url``),
its registry set up with the management commands (``bench.server``). Load generators share the
machine's two cores with the server and PostgreSQL, as on a one-box deployment. Results also go
to bench/out/events.json. ``bench/experiments.py`` measures assignment and serving with an
experiment against without.
"""

import os

# One BLAS thread, as in hybridrec/gunicorn.conf.py; set before numpy is imported.
for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import multiprocessing  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from pathlib import Path  # noqa: E402
from urllib.parse import urlsplit, urlunsplit  # noqa: E402

import numpy as np  # noqa: E402
import requests  # noqa: E402

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

from bench import server  # noqa: E402
from bench.load import wrk_load  # noqa: E402
from bench.synthesis import SEED_FACTORS, SEED_ITEMS, synth_cf  # noqa: E402
from bench.tables import table  # noqa: E402

EVENTS_PER_POST = 1000


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer users, short runs")
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--seconds", type=int, default=10, help="load per measurement")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections")
    parser.add_argument("--posters", type=int, default=2, help="client processes posting events")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument(
        "--database-url",
        default="postgresql://postgres@127.0.0.1:5432/hr_events",
        help="a PostgreSQL database to drop and create for the run",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    if args.quick:
        args.users, args.seconds = 20_000, 3
    if not shutil.which("wrk"):
        raise SystemExit("bench/events.py needs wrk on the PATH")

    folder = Path(tempfile.mkdtemp(prefix="hybridrec-bench-events-"))
    fresh_database(args.database_url)
    env = server.bench_env(
        folder,
        DATABASE_URL=args.database_url,
        HYBRIDREC_THROTTLE_EVENTS="100000000/min",
        HYBRIDREC_EVENTS_MAX_BATCH=EVENTS_PER_POST,
    )
    server.use_django(env)
    from modelstore.bundles import write_bundle

    results = {"users": args.users, "seconds": args.seconds, "connections": args.connections}
    try:
        paths = [
            write_bundle(
                folder / f"cf-{seed}.joblib",
                kind="cf",
                arrays=synth_cf(args.users, SEED_ITEMS, SEED_FACTORS, seed=seed),
            ).path
            for seed in (1, 2)
        ]
        ids = server.register(env, [("cf", paths[0], "cf-1"), ("cf", paths[1], "cf-2")], active={"cf-1"})
        token = server.staff_token(env)
        with server.serving(env, folder, workers=args.workers, threads=args.threads) as running:
            api = Api(running.url, token)
            results["events"] = bench_events(args, running, api, ids, folder)
            print_events(results["events"], args)
    finally:
        out = BASE_DIR / "bench" / "out"
        out.mkdir(parents=True, exist_ok=True)
        (out / "events.json").write_text(json.dumps(results, indent=2, default=str))
        if args.keep:
            print(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


def fresh_database(url):
    """Drop and create the database ``url`` names (on its server's ``postgres`` database)."""
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')


class Api:
    def __init__(self, url, token):
        self.url = url
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Token {token}"

    def post(self, path, body, expected):
        response = self.session.post(self.url + path, json=body, timeout=60)
        if response.status_code != expected:
            raise SystemExit(f"bench: POST {path} answered {response.status_code}: {response.text[:500]}")
        return response.json()


# --- an experiment running while events are posted ---------------------------------------------


def experiment_start(api, ids):
    body = {
        "kind": "cf",
        "name": f"bench {uuid.uuid4().hex[:6]}",
        "arms": [{"version": ids["cf-1"], "share": 0.5}, {"version": ids["cf-2"], "share": 0.5}],
    }
    return api.post("/api/v1/experiments/", body, 201)["id"]


def experiment_stop(api, experiment_id):
    api.post(f"/api/v1/experiments/{experiment_id}/stop/", {"keep_control": True}, 200)


def wait_for_workers(running, experiment_id, in_a_row=40, deadline_seconds=60):
    """Ask on new connections until ``in_a_row`` answers running come with (or without) the experiment."""
    streak = 0
    deadline = time.monotonic() + deadline_seconds
    while streak < in_a_row:
        if time.monotonic() > deadline:
            raise SystemExit(f"bench: workers did not switch to experiment {experiment_id} in time")
        try:
            response = requests.get(f"{running.url}/api/v1/recommendations/C0000001/?k=1", timeout=10)
        except requests.RequestException:
            streak = 0
            continue
        tag = (response.json().get("experiment") or {}).get("id") if response.status_code == 200 else -1
        streak = streak + 1 if tag == experiment_id else 0


# --- events ---------------------------------------------------------------------------------------


def _poster(url, token, seconds, seed, queue):
    """Post batches of EVENTS_PER_POST events for ``seconds``; put (accepted, requests, failures, latencies)."""
    rng = np.random.default_rng(seed)
    session = requests.Session()
    session.headers["Authorization"] = f"Token {token}"
    session.headers["Content-Type"] = "application/json"
    bodies = []
    for _ in range(8):  # a few distinct bodies, made before the clock starts
        events = [
            {
                "type": "impression" if i % 10 else "click",
                "customer_id": f"C{int(rng.integers(0, 10**6)):07d}",
                "item_id": f"I{int(rng.integers(0, 7214)):05d}",
                "request_id": uuid.uuid4().hex,
            }
            for i in range(EVENTS_PER_POST)
        ]
        bodies.append(json.dumps({"events": events}).encode())
    accepted = posts = failures = 0
    latencies = []
    stop_at = time.monotonic() + seconds
    while time.monotonic() < stop_at:
        started = time.perf_counter()
        try:
            response = session.post(f"{url}/api/v1/events/", data=bodies[posts % len(bodies)], timeout=60)
        except requests.RequestException:
            failures += 1
            continue
        latencies.append(time.perf_counter() - started)
        posts += 1
        if response.status_code == 202:
            accepted += response.json()["accepted"]
        else:
            failures += 1
    queue.put((accepted, posts, failures, latencies, time.monotonic() - (stop_at - seconds)))


def post_events(args, running, token, seconds):
    """Run ``args.posters`` posting processes for ``seconds``; return events/s and batch latencies."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    posters = [
        context.Process(target=_poster, args=(running.url, token, seconds, seed, queue))
        for seed in range(args.posters)
    ]
    for poster in posters:
        poster.start()
    outcomes = [queue.get(timeout=seconds + 120) for _ in posters]
    for poster in posters:
        poster.join(30)
    latencies = [latency for outcome in outcomes for latency in outcome[3]]
    accepted = sum(outcome[0] for outcome in outcomes)
    return {
        "accepted": accepted,
        # Each poster's events over its own window (which ends with its last answer).
        "events_per_second": sum(outcome[0] / outcome[4] for outcome in outcomes),
        "posts": sum(outcome[1] for outcome in outcomes),
        "failures": sum(outcome[2] for outcome in outcomes),
        "p50_ms": float(np.percentile(latencies, 50) * 1e3) if latencies else float("nan"),
        "p99_ms": float(np.percentile(latencies, 99) * 1e3) if latencies else float("nan"),
    }


def stored_events(database_url):
    import psycopg

    with psycopg.connect(database_url) as connection:
        return connection.execute("SELECT COUNT(*) FROM feedback_event").fetchone()[0]


def bench_events(args, running, api, ids, folder):
    token = api.session.headers["Authorization"].split()[1]
    rng = np.random.default_rng(6)
    paths = [f"/api/v1/recommendations/C{u:07d}/?k=10" for u in rng.integers(0, args.users, size=2000)]
    experiment_id = experiment_start(api, ids)
    wait_for_workers(running, experiment_id)
    post_events(args, running, token, 2)  # warm-up
    before = stored_events(args.database_url)
    runs = {"alone": [], "with_recommendations": [], "recommendations_meanwhile": []}
    for _ in range(2):  # alternate, so drift on a shared machine hits both alike
        runs["alone"].append(post_events(args, running, token, args.seconds))
        meanwhile = {}

        def recommend(meanwhile=meanwhile):
            # Longer than the posting window, which starts once the posters' processes are up.
            meanwhile.update(wrk_load(running.port, paths, args.seconds + 6, args.connections, folder))

        load = threading.Thread(target=recommend)
        load.start()
        time.sleep(1)
        runs["with_recommendations"].append(post_events(args, running, token, args.seconds))
        load.join(args.seconds + 120)
        runs["recommendations_meanwhile"].append(meanwhile)
    experiment_stop(api, experiment_id)
    stored = stored_events(args.database_url) - before
    result = {name: mean_of(rows) for name, rows in runs.items()}
    result["acknowledged"] = sum(
        r["accepted"] for name in ("alone", "with_recommendations") for r in runs[name]
    )
    result["stored"] = stored
    return result


def mean_of(rows):
    """Return the mean of each number over ``rows`` (sums for counts)."""
    out = {}
    for key in rows[0]:
        values = [row[key] for row in rows]
        out[key] = (
            sum(values) if key in ("accepted", "posts", "failures", "errors") else float(np.mean(values))
        )
    return out


def print_events(e, args):
    print(
        f"Events — POST /api/v1/events/ with {EVENTS_PER_POST:,} events per request from {args.posters} client "
        f"processes, 2 × {args.seconds} s per row, alternated; PostgreSQL, one bulk_create per request, committed before the 202\n"
    )
    base = e["alone"]["events_per_second"]
    table(
        ["events", "events/s", "requests", "batch p50 ms", "batch p99 ms", "failed", "× alone"],
        [
            (
                label,
                f"{r['events_per_second']:.0f}",
                r["posts"],
                f"{r['p50_ms']:.1f}",
                f"{r['p99_ms']:.1f}",
                r["failures"],
                f"{r['events_per_second'] / base:.2f}",
            )
            for label, r in (
                ("alone (baseline)", e["alone"]),
                ("while wrk asks for recommendations", e["with_recommendations"]),
            )
        ],
    )
    meanwhile = e["recommendations_meanwhile"]
    print(
        f"recommendations meanwhile: {meanwhile['rps']:.0f} requests/s, p99 {meanwhile['p99']:.2f} ms, "
        f"{meanwhile['errors']} non-2xx"
    )
    rate = e["with_recommendations"]["events_per_second"]
    print(f"events/s while serving: {rate:.0f} (target ≥ 5,000): {'met' if rate >= 5000 else 'NOT met'}")
    print(f"acknowledged {e['acknowledged']:,} events, {e['stored']:,} rows in the table\n")


if __name__ == "__main__":
    main()
