"""Experiments: what assigning an arm costs, serving with an experiment against without, events/s.

Assignment, in a process of its own (``time.perf_counter_ns`` around batches of 1,000 calls): the
stable ``Assignment.arm_index`` (blake2b of "experiment:customer", then a bisect) next to a bare
blake2b digest of the same bytes, with what else an answer in an experiment adds (a fresh request
id, buffering its exposure). Target: under 10 µs a call.

Serving: gunicorn (2 workers × 4 threads) serves a registry with two CF versions on loopback,
over PostgreSQL (``BENCH_DATABASE_URL``, default ``postgresql://postgres@127.0.0.1:5432/hybridrec_bench``,
a database the benchmark owns and may drop) or, when that is not reachable, SQLite. wrk asks
for recommendations of random customers without an experiment and with a 50/50 one (started and
stopped through the API, each run after every worker reported the change), alternating A, B, A,
B so that drift on a shared machine hits both alike. Target: with the experiment, requests/s and
p99 within 10 % of without.

Events (PostgreSQL only; without it the section says so): on the same server, wrk posts
/api/v1/events/ with 1,000 events a request (2 connections), alone and while another wrk asks
for recommendations with a 50/50 experiment running, alternated. A 202 comes after the batch's
insert committed, so the run counts the rows in the table against the events acknowledged.
Target: ≥ 5,000 events/s while recommendations are served.

Results read (PostgreSQL only): in a process of its own on a database of its own
(``BENCH_DATABASE_URL`` with ``_results`` appended), answers are written through the exposure
flusher's write and events through ``events_record`` (each counted as it is written), then
``GET /api/v1/experiments/<id>/`` is read ten times. Baseline of the same run: counting the
experiment's events once (``SELECT COUNT(*)``), the least a recomputation from the events must
read. Target: a read under 1 s.
"""

import json
import os
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from hashlib import blake2b
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import numpy as np

from bench import data, load, server
from bench.report import Chart, Section, Table
from tests.support import processes

BATCH = 1000
EVENTS_PER_POST = 1000
ASSIGNMENT_TARGET_US = 10.0
SERVING_SHARE = 0.9  # with an experiment: ≥ 0.9 × the requests/s, ≤ 1.1 × the p99
EVENTS_TARGET = 5000
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/hybridrec_bench"


def plan(ctx):
    """Return the run's sizes: scale, batches of calls, seconds per wrk run, A/B pairs, connections, …"""
    if ctx.quick:
        return {
            "scale": "tiny",
            "rounds": 20,
            "seconds": 1,
            "pairs": 1,
            "connections": 4,
            "event_rounds": 1,
            "copy_rows": 20_000,
            "warm_up": False,
            "read_answers": 2_000,
            "read_events": 20_000,
        }
    return {
        "scale": "seed",
        "rounds": 200,
        "seconds": 8,
        "pairs": 3,
        "connections": 8,
        "event_rounds": 2,
        "copy_rows": 200_000,
        "warm_up": True,
        "read_answers": 100_000,
        "read_events": 1_000_000,
    }


def pairs(sizes):
    """Return "1 A/B pair" or "3 A/B pairs"."""
    return f"{sizes['pairs']} A/B pair{'s' if sizes['pairs'] > 1 else ''}"


# --- assignment, in a process of its own ----------------------------------------------------------------


def per_call_us(function, arguments, rounds):
    """Return (mean µs, p99 µs of the batch means) of ``function(argument)`` over ``rounds`` batches."""
    for argument in arguments[:BATCH]:
        function(argument)
    means = []
    for round_ in range(rounds):
        batch = arguments[(round_ * BATCH) % len(arguments) :][:BATCH]
        started = time.perf_counter_ns()
        for argument in batch:
            function(argument)
        means.append((time.perf_counter_ns() - started) / len(batch) / 1e3)
    return float(np.mean(means)), float(np.percentile(means, 99))


# Run in a process of its own: the product's modules need Django set up, which the suite's is not.
CALLS_SCRIPT = """
import json, sys, django
django.setup()
from bench.parts.experiments import measure_calls
print(json.dumps(measure_calls(int(sys.argv[1]))))
"""


def calls_in_child(rounds):
    """Return ``measure_calls(rounds)`` measured in a fresh Django process on a throwaway registry."""
    with tempfile.TemporaryDirectory(prefix="hybridrec-bench-calls-") as folder:
        env = server.bench_env(Path(folder), OMP_NUM_THREADS=1, OPENBLAS_NUM_THREADS=1, MKL_NUM_THREADS=1)
        return json.loads(processes.run_python(CALLS_SCRIPT, env, rounds))


def measure_calls(rounds):
    """Return ``[{"call", "mean_us", "p99_us"}]``, the bare digest (the baseline) first (Django set up)."""
    from recommendations.api.answering import new_request_id
    from recommendations.experiments.assignment import Assignment
    from recommendations.experiments.exposures import ExposureBuffer

    customers = [f"C{i:07d}" for i in np.random.default_rng(3).integers(0, 10_000_000, size=50_000)]
    two, four = Assignment(42, [0.5, 0.5]), Assignment(42, [0.4, 0.2, 0.2, 0.2])
    buffer = ExposureBuffer()
    buffer._thread = object()  # no flusher: only the append a request pays
    items = [f"I{i:05d}" for i in range(10)]

    def record(customer_id):
        buffer.record(request_id="r", experiment_id=42, arm_id=1, customer_id=customer_id, items=items)
        if buffer.pending() > 100_000:
            buffer._rows.clear()

    calls = [
        ("blake2b digest of the same bytes", lambda c: blake2b(f"42:{c}".encode(), digest_size=8).digest()),
        ("assignment, 2 arms (Assignment.arm_index)", two.arm_index),
        ("assignment, 4 arms", four.arm_index),
        ("a fresh request id", lambda c: new_request_id()),
        ("buffering one exposure (ExposureBuffer.record)", record),
    ]
    found = []
    for name, function in calls:
        mean, p99 = per_call_us(function, customers, rounds)
        found.append({"call": name, "mean_us": mean, "p99_us": p99})
    return found


def calls_table(calls, rounds):
    base = calls[0]["mean_us"]
    return Table(
        title=f"Assignment and what an answer in an experiment adds, per call ({rounds} batches of {BATCH:,} calls)",
        columns=["call", "mean µs", "p99 µs (batch means)", "× digest"],
        rows=[
            [c["call"], f"{c['mean_us']:.2f}", f"{c['p99_us']:.2f}", f"{c['mean_us'] / base:.2f}"]
            for c in calls
        ],
        limit=f"The bare blake2b digest of the same bytes: {base:.2f} µs a call in this run.",
        note=f"Target: assignment under {ASSIGNMENT_TARGET_US:g} µs a call.",
    )


# --- serving with an experiment against without -------------------------------------------------


def versions_wanted(ctx, scale):
    """Return the ``(kind, path, label)`` of the two CF versions: the scale's bundle and its variant."""
    name = data.scale_of(scale).name
    cf_path = data.dataset(scale, "native", ctx)
    variant = server.second_version(cf_path, server.registry_folder(ctx, f"{name}-experiments"))
    return [("cf", cf_path, "cf-1"), ("cf", variant, "cf-2")]


def sqlite_registry(ctx, scale):
    """Return ``(folder, env, ids, staff headers)`` of a SQLite registry with ``cf-1`` (active) and ``cf-2``."""
    folder = server.registry_folder(ctx, f"{data.scale_of(scale).name}-experiments")
    env, ids, staff = server.registry(folder, versions_wanted(ctx, scale), active={"cf-1"})
    return folder, env, ids, staff


def postgresql_registry(ctx, scale, url):
    """Return the same registry over PostgreSQL at ``url``, kept between runs like the SQLite one.

    The database is dropped and made again whenever the bundle files, the migrations or the URL
    differ from the run that made it (``database.json``), or it no longer holds this registry.
    """
    folder = server.registry_folder(ctx, f"{data.scale_of(scale).name}-experiments-postgresql")
    wanted = versions_wanted(ctx, scale)
    identity = {
        "url": url,
        "bundles": [[str(path), path.stat().st_size, path.stat().st_mtime_ns] for _, path, _ in wanted],
        "migrations": sorted(
            str(p.relative_to(processes.ROOT))
            for pattern in ("*/migrations/0*.py", "*/*/migrations/0*.py")
            for p in processes.ROOT.glob(pattern)
        ),
    }
    marker = folder / "database.json"
    if not marker.is_file() or json.loads(marker.read_text()) != identity or not holds_registry(url, folder):
        fresh_database(url)
        (folder / "registry.json").unlink(missing_ok=True)
        marker.unlink(missing_ok=True)
    env_extra = {"DATABASE_URL": url, "HYBRIDREC_THROTTLE_EVENTS": "100000000/min"}
    env_extra["HYBRIDREC_EVENTS_MAX_BATCH"] = str(EVENTS_PER_POST)
    env, ids, staff = server.registry(folder, wanted, active={"cf-1"}, env_extra=env_extra)
    marker.write_text(json.dumps(identity))
    return folder, env, ids, staff


def api(method, url, headers, body=None):
    """Call the API and return its JSON; try again after a 503 (SQLite busy while a flusher writes)."""
    import requests

    for _ in range(20):
        response = requests.request(method, url, json=body, headers=headers, timeout=30)
        if response.status_code != 503:
            break
        time.sleep(0.2)
    if response.status_code >= 300:
        raise RuntimeError(f"{method} {url} answered {response.status_code}: {response.text[:500]}")
    return response.json()


def workers_on(url, headers, experiment_id, workers, *, timeout_seconds=60):
    """Ask health on new connections until ``workers`` pids report CF experiment ``experiment_id`` (or None)."""
    seen = set()

    def all_on():
        response = processes.get(f"{url}/api/v1/health/", headers=headers, timeout=5)
        if response is not None and response.status_code == 200:
            report = response.json()
            if (report["experiments"].get("cf") or {}).get("id") == experiment_id:
                seen.add(report["pid"])
            else:
                seen.discard(report["pid"])
        return len(seen) >= workers

    processes.wait_until(
        all_on,
        timeout=timeout_seconds,
        interval=0.01,
        message=f"{workers} workers on experiment {experiment_id}",
    )


def stop_running(url, headers, workers):
    """Stop any CF experiment a stopped run left running, keeping the control."""
    listing = api("GET", f"{url}/api/v1/experiments/?kind=cf&status=running", headers)
    for experiment in listing["results"]:
        api("POST", f"{url}/api/v1/experiments/{experiment['id']}/stop/", headers, {"keep_control": True})
    workers_on(url, headers, None, workers)


def experiment_start(url, headers, ids, workers):
    arms = [{"version": ids["cf-1"], "share": 0.5}, {"version": ids["cf-2"], "share": 0.5}]
    body = {"kind": "cf", "name": f"bench {uuid.uuid4().hex[:6]}", "arms": arms}
    experiment_id = api("POST", f"{url}/api/v1/experiments/", headers, body)["id"]
    workers_on(url, headers, experiment_id, workers)
    return experiment_id


def experiment_stop(url, headers, experiment_id, workers, *, wait=True):
    """Stop the experiment keeping the control; with ``wait``, until every worker serves without it."""
    api("POST", f"{url}/api/v1/experiments/{experiment_id}/stop/", headers, {"keep_control": True})
    if wait:
        workers_on(url, headers, None, workers)


def recommendation_requests(ctx, scale):
    """Return wrk GETs of recommendations (k=10) for random customers of ``scale``."""
    from modelstore.bundles import open_bundle

    user_ids = open_bundle(data.dataset(scale, "native", ctx)).arrays["user_ids"]
    picked = user_ids[np.random.default_rng(5).integers(0, user_ids.shape[0], size=2000)].tolist()
    return [load.get(f"/api/v1/recommendations/{c}/?k=10") for c in picked]


def measure_serving(running, folder, staff, ids, sizes, requests, workers=2):
    """Return health's figures, per side of the A/B its wrk runs (as dicts), and the running experiment.

    The last "with" run's experiment is left running (``experiment_id``) for the events that follow.
    """
    seconds, connections = sizes["seconds"], sizes["connections"]

    def wrk(batch, seed):
        return load.wrk_run(
            running.url, batch, seconds=seconds, connections=connections, folder=folder, seed=seed
        )

    runs: dict[str, list] = {"without": [], "with": []}
    experiment_id = None
    try:
        for pair in range(sizes["pairs"]):
            if experiment_id is not None:
                experiment_stop(running.url, staff, experiment_id, workers)
                experiment_id = None
            runs["without"].append(wrk(requests, 2 * pair + 2).as_dict())
            experiment_id = experiment_start(running.url, staff, ids, workers)
            if pair == 0 and sizes["warm_up"]:  # the candidate's pages
                load.wrk_run(running.url, requests, seconds=1, connections=connections, folder=folder)
            runs["with"].append(wrk(requests, 2 * pair + 3).as_dict())
        # Health last: the workers are warm by now, as they are for the runs it is compared with.
        health = wrk([load.get("/api/v1/health/")], 1)
    except BaseException:
        if experiment_id is not None:
            experiment_stop(running.url, staff, experiment_id, workers)
        raise
    return {"health": health.as_dict(), "runs": runs, "experiment_id": experiment_id}


def summary(runs):
    """Return requests/s over all runs, the median p50 and the worst p99, and the failures."""
    total = sum(run["requests"] for run in runs)
    return {
        "rps": total / sum(run["seconds"] for run in runs),
        "p50_ms": float(np.median([run["p50_ms"] for run in runs])),
        "p99_ms": max(run["p99_ms"] for run in runs),
        "failed": sum(run["non_2xx"] + run["socket_errors"] for run in runs),
    }


def serving_table(serving, sizes, counts):
    without, with_ = summary(serving["runs"]["without"]), summary(serving["runs"]["with"])
    rows = []
    for name, figures in (("without an experiment (baseline)", without), ("with a 50/50 experiment", with_)):
        rows.append(
            [
                name,
                f"{figures['rps']:,.0f}",
                f"{figures['rps'] / without['rps']:.3f}",
                f"{figures['p50_ms']:.2f}",
                f"{figures['p99_ms']:.2f}",
                f"{figures['p99_ms'] / without['p99_ms']:.3f}",
                figures["failed"],
            ]
        )
    health = serving["health"]

    def by_pair(key):
        pairs = zip(serving["runs"]["with"], serving["runs"]["without"], strict=True)
        return ", ".join(f"{with_run[key] / without_run[key]:.2f}" for with_run, without_run in pairs)

    return Table(
        title=(
            f"GET /api/v1/recommendations/<id>/?k=10 at {counts}, with an experiment against without "
            f"({pairs(sizes)} × {sizes['seconds']} s)"
        ),
        columns=["serving", "requests/s", "× without", "p50 ms", "p99 ms", "p99 × without", "failed"],
        rows=rows,
        limit=(
            f"GET /api/v1/health/ on the same server: {health['rps']:,.0f} requests/s, p99 "
            f"{health['p99_ms']:.2f} ms in this run."
        ),
        note=(
            f"gunicorn 2 workers × 4 threads over {serving['database']}; wrk (one thread, "
            f"{sizes['connections']} connections) on the "
            f"same two cores. Target: with the experiment ≥ {SERVING_SHARE:g} × the requests/s and p99 "
            f"≤ {2 - SERVING_SHARE:g} × the p99 of without. p99 is the worst of the runs. Per pair, with "
            f"against without: requests/s × {by_pair('rps')}; p99 × {by_pair('p99_ms')}. Load average "
            f"(1 min) before the part {serving['load_before']:.1f}, after {serving['load_after']:.1f} on "
            f"{os.cpu_count()} cores."
        ),
    )


# --- events through the batch endpoint ----------------------------------------------------------


def database_url():
    return os.environ.get("BENCH_DATABASE_URL") or DEFAULT_DATABASE_URL


def postgresql_problem(url):
    """Return None when PostgreSQL at ``url`` takes connections, else why not (one line)."""
    try:
        import psycopg
    except ImportError as exc:
        return f"psycopg is not installed ({exc})"
    parts = urlsplit(url)
    try:
        with psycopg.connect(urlunsplit(parts._replace(path="/postgres")), connect_timeout=5):
            return None
    except psycopg.Error as exc:
        reason = " ".join(str(exc).split())[:200]
        return f"PostgreSQL at {parts.hostname}:{parts.port or 5432} is not reachable ({reason})"


def fresh_database(url):
    """Drop and create the database ``url`` names (on its server's ``postgres`` database)."""
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    with psycopg.connect(urlunsplit(parts._replace(path="/postgres")), autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')


def holds_registry(url, folder):
    """Return True when the database at ``url`` is the one ``folder``'s registry was made in.

    Its staff token (``registry.json``) is random, so another run's registry on the same database
    (a test's, with other files) does not pass for this one.
    """
    import psycopg

    marker = folder / "registry.json"
    if not marker.is_file():
        return False
    token = json.loads(marker.read_text())["token"]
    try:
        with psycopg.connect(url, connect_timeout=5) as connection:
            found = connection.execute("SELECT 1 FROM authtoken_token WHERE key = %s", [token]).fetchone()
    except psycopg.Error:
        return False
    return found is not None


def event_bodies(users, rng, count=4):
    """Return ``count`` JSON bodies of EVENTS_PER_POST events (impressions and a tenth clicks)."""
    bodies = []
    for _ in range(count):
        events = [
            {
                "type": "click" if i % 10 == 0 else "impression",
                "customer_id": str(users[int(rng.integers(0, len(users)))]),
                "item_id": f"I{int(rng.integers(0, 7214)):05d}",
                "request_id": uuid.uuid4().hex,
            }
            for i in range(EVENTS_PER_POST)
        ]
        bodies.append({"events": events})
    return bodies


def stored_events(url):
    import psycopg

    with psycopg.connect(url) as connection:
        return connection.execute("SELECT COUNT(*) FROM feedback_event").fetchone()[0]


def copy_rate(url, bodies, rows):
    """Return rows/s of PostgreSQL's COPY of the same events into the table, from this process."""
    import psycopg

    now = datetime.now(UTC)
    events = [event for body in bodies for event in body["events"]]
    with psycopg.connect(url) as connection:
        started = time.perf_counter()
        with connection.cursor() as cursor:
            command = (
                "COPY feedback_event (type, customer_id, item_id, request_id, ts, received_at) FROM STDIN"
            )
            with cursor.copy(command) as copy:
                for i in range(rows):
                    event = events[i % len(events)]
                    copy.write_row(
                        (event["type"], event["customer_id"], event["item_id"], event["request_id"], now, now)
                    )
        connection.commit()
        return rows / (time.perf_counter() - started)


def measure_events(running, folder, staff, experiment_id, sizes, requests, url, workers=2):
    """Return the events figures: wrk posting alone, and while another wrk asks for recommendations.

    ``experiment_id`` is the running experiment; it is stopped at the end.
    """
    import psycopg

    seconds, rounds = sizes["seconds"], sizes["event_rounds"]
    with psycopg.connect(url) as connection:
        connection.execute("TRUNCATE feedback_event")  # the benchmark's own database: keep it small
    users = [request[1].split("/")[4] for request in requests]
    bodies = event_bodies(users, np.random.default_rng(6))
    limit = copy_rate(url, bodies, sizes["copy_rows"])
    posts = [load.post_json("/api/v1/events/", body, headers=staff) for body in bodies]

    def post(seed):
        return load.wrk_run(running.url, posts, seconds=seconds, connections=2, folder=folder, seed=seed)

    runs: dict[str, list] = {"alone": [], "while": [], "recommendations": []}
    try:
        if sizes["warm_up"]:
            post(90)
            time.sleep(1)  # the batches in flight when wrk stopped commit
        before = stored_events(url)
        for round_ in range(rounds):
            runs["alone"].append(post(10 + round_))
            meanwhile = {}

            def recommend(meanwhile=meanwhile, seed=20 + round_):
                meanwhile["run"] = load.wrk_run(
                    running.url,
                    requests,
                    seconds=seconds + 1,
                    connections=sizes["connections"],
                    folder=folder,
                    seed=seed,
                )

            thread = threading.Thread(target=recommend)
            thread.start()
            time.sleep(0.5)  # the recommendations' load spans the events' window
            runs["while"].append(post(30 + round_))
            thread.join(seconds + 120)
            runs["recommendations"].append(meanwhile["run"])
        time.sleep(0.5)  # the batches in flight when wrk stopped commit
        stored = stored_events(url) - before
    finally:
        experiment_stop(running.url, staff, experiment_id, workers, wait=False)  # the server stops next
    measured = {name: [run.as_dict() for run in found] for name, found in runs.items()}
    acknowledged = sum(
        (run["requests"] - run["non_2xx"]) * EVENTS_PER_POST
        for name in ("alone", "while")
        for run in measured[name]
    )
    return {
        "runs": measured,
        "acknowledged": acknowledged,
        "stored": stored,
        "in_flight_at_most": 2 * 2 * rounds * EVENTS_PER_POST,
        "copy_rows_per_second": limit,
        "seconds": seconds,
        "rounds": rounds,
    }


def events_table(events, sizes):
    alone = summary(events["runs"]["alone"])
    rows = []
    for name, key in (("alone (baseline)", "alone"), ("while wrk asks for recommendations", "while")):
        figures = summary(events["runs"][key])
        rate = figures["rps"] * EVENTS_PER_POST
        rows.append(
            [
                name,
                f"{rate:,.0f}",
                f"{rate / (alone['rps'] * EVENTS_PER_POST):.2f}",
                f"{figures['p50_ms']:.1f}",
                f"{figures['p99_ms']:.1f}",
                figures["failed"],
            ]
        )
    meanwhile = summary(events["runs"]["recommendations"])
    return Table(
        title=(
            f"POST /api/v1/events/ ({EVENTS_PER_POST:,} events a request, 2 connections), alone and while "
            f"recommendations are served ({events['rounds']} × {events['seconds']} s each, alternated)"
        ),
        columns=["events", "events/s", "× alone", "batch p50 ms", "batch p99 ms", "failed requests"],
        rows=rows,
        limit=(
            f"PostgreSQL's COPY of the same rows into the table from one process: "
            f"{events['copy_rows_per_second']:,.0f} rows/s in this run."
        ),
        note=(
            f"Recommendations meanwhile ({sizes['connections']} connections, a 50/50 experiment running): "
            f"{meanwhile['rps']:,.0f} requests/s, p99 {meanwhile['p99_ms']:.1f} ms, {meanwhile['failed']} failed. "
            f"Acknowledged {events['acknowledged']:,} events (202s × {EVENTS_PER_POST:,}); "
            f"{events['stored']:,} rows stored. Target: ≥ {EVENTS_TARGET:,} events/s while recommendations "
            "are served."
        ),
    )


# --- the results read -------------------------------------------------------------------------

READ_TARGET_SECONDS = 1.0
READ_SCRIPT = """
import json, sys, django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from bench.parts.experiments import measure_read
print(json.dumps(measure_read(int(sys.argv[1]), int(sys.argv[2]))))
"""


def read_in_child(url, sizes):
    """Return ``measure_read`` run in a fresh Django process on a fresh database next to ``url``."""
    parts = urlsplit(url)
    own = urlunsplit(parts._replace(path=parts.path.rstrip("/") + "_results"))
    fresh_database(own)
    with tempfile.TemporaryDirectory(prefix="hybridrec-bench-read-") as folder:
        env = server.bench_env(Path(folder), DATABASE_URL=own, ALLOWED_HOSTS="testserver")
        found = processes.run_python(
            READ_SCRIPT, env, sizes["read_answers"], sizes["read_events"], timeout_seconds=7200
        )
    return json.loads(found)


def measure_read(answers, events):
    """Write ``answers`` answers and ``events`` events as serving and the events API do; time the results read.

    Return the write rates, the read's median and worst of ten, and the baseline (Django set up).
    """
    from django.contrib.auth import get_user_model
    from django.db import connection
    from rest_framework.test import APIClient

    from modelstore.models import ModelVersion
    from recommendations.experiments import exposures
    from recommendations.experiments.models import Arm, Experiment
    from recommendations.feedback.services import events_record

    rng = np.random.default_rng(11)
    versions = [
        ModelVersion.objects.create(kind="cf", label=f"read-{n}", status="ready", sha256=f"{n:064d}")
        for n in range(2)
    ]
    experiment = Experiment.objects.create(kind="cf", name="results read")
    arms = [
        Arm.objects.create(
            experiment=experiment,
            version=version,
            share=0.5,
            is_control=n == 0,
            name="control" if n == 0 else "B",
            position=n,
        )
        for n, version in enumerate(versions)
    ]
    customers = max(answers // 5, 1)  # five answers a customer on average
    shown = []
    started = time.perf_counter()
    for start in range(0, answers, BATCH):
        rows = []
        for _n in range(start, min(start + BATCH, answers)):
            customer = int(rng.integers(0, customers))
            items = [f"I{int(i):05d}" for i in rng.choice(7214, size=10, replace=False)]
            request_id = uuid.uuid4().hex
            rows.append(
                (request_id, experiment.pk, arms[customer % 2].pk, f"C{customer}", items, datetime.now(UTC))
            )
            shown.append((request_id, f"C{customer}", items))
        exposures.store(rows)  # written and counted, as the flusher does
    answers_seconds = time.perf_counter() - started
    started = time.perf_counter()
    for start in range(0, events, EVENTS_PER_POST):
        batch = []
        for n in range(start, min(start + EVENTS_PER_POST, events)):
            request_id, customer, items = shown[int(rng.integers(0, len(shown)))]
            event = {
                "type": "click" if n % 10 == 0 else "impression",
                "customer_id": customer,
                "item_id": items[int(rng.integers(0, 10))],
            }
            if n % 5:  # four in five name their answer; the others are matched by time
                event["request_id"] = request_id
            batch.append(event)
        events_record(events=batch)
    events_seconds = time.perf_counter() - started

    client = APIClient()
    client.force_authenticate(get_user_model().objects.create_superuser("bench-read", password=None))
    path = f"/api/v1/experiments/{experiment.pk}/"
    began = time.perf_counter()
    client.get(path)  # the process's first request also loads the URLs and the API's modules
    first = time.perf_counter() - began
    reads, baseline, answer = [], [], None
    for _ in range(10):
        began = time.perf_counter()
        answer = client.get(path)
        reads.append(time.perf_counter() - began)
        began = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT COUNT(*) FROM feedback_event WHERE received_at >= %s", [experiment.started_at]
            )
            stored = cursor.fetchone()[0]
        baseline.append(time.perf_counter() - began)
    assert answer is not None and answer.status_code == 200, answer
    arms_read = answer.json()["results"]["arms"]
    return {
        "answers": answers,
        "events": events,
        "events_stored": stored,
        "customers": customers,
        "answers_per_second": answers / answers_seconds,
        "events_per_second": events / events_seconds,
        "read_median_s": float(np.median(reads)),
        "read_max_s": max(reads),
        "first_read_s": first,
        "baseline_median_s": float(np.median(baseline)),
        "impressions": sum(row["impressions"] for row in arms_read),
        "clicks": sum(row["clicks"] for row in arms_read),
        "served": sum(row["served"] for row in arms_read),
    }


def read_table(read):
    return Table(
        title=(
            f"GET /api/v1/experiments/<id>/ after {read['answers']:,} answers and {read['events']:,} events "
            "written and counted as they came (10 reads)"
        ),
        columns=["measured", "median s", "worst s", "× baseline"],
        rows=[
            [
                "the results read",
                f"{read['read_median_s']:.4f}",
                f"{read['read_max_s']:.4f}",
                f"{read['read_median_s'] / read['baseline_median_s']:.3f}",
            ],
            ["baseline: SELECT COUNT(*) of the events", f"{read['baseline_median_s']:.4f}", "", "1"],
        ],
        limit=(
            f"Written meanwhile, counted as they came: {read['answers_per_second']:,.0f} answers/s through the "
            f"exposure flusher's write, {read['events_per_second']:,.0f} events/s through events_record (one process)."
        ),
        note=(
            f"The process's first request, not counted above, took {read['first_read_s']:.2f} s. "
            f"{read['customers']:,} customers, answers of 10 items; {read['served']:,} customers served, "
            f"{read['impressions']:,} impressions and {read['clicks']:,} clicks counted. "
            f"Target: a read under {READ_TARGET_SECONDS:g} s."
        ),
    )


# --- the section --------------------------------------------------------------------------------


def verdicts(calls, serving, events, read=None):
    """Return plain sentences saying which targets were met."""
    lines = []
    worst = max(c["mean_us"] for c in calls if c["call"].startswith("assignment"))
    lines.append(
        f"Assignment: {worst:.2f} µs a call at most (target < {ASSIGNMENT_TARGET_US:g} µs) — "
        f"{'met' if worst < ASSIGNMENT_TARGET_US else 'NOT met'}"
    )
    without, with_ = summary(serving["runs"]["without"]), summary(serving["runs"]["with"])
    share, p99 = with_["rps"] / without["rps"], with_["p99_ms"] / without["p99_ms"]
    met = share >= SERVING_SHARE and p99 <= 2 - SERVING_SHARE
    pairs = zip(serving["runs"]["with"], serving["runs"]["without"], strict=True)
    shares = [with_run["rps"] / without_run["rps"] for with_run, without_run in pairs]
    # Pairs that disagree by more than the tolerance itself cannot tell 10 % apart.
    resolved = max(shares) - min(shares) <= 2 * (1 - SERVING_SHARE)
    verdict = (
        ("met" if met else "NOT met")
        if resolved
        else (
            f"not resolved: the pairs gave {min(shares):.2f}–{max(shares):.2f} × the requests/s, a spread wider "
            "than the tolerance (the machine's noise)"
        )
    )
    lines.append(
        f"With an experiment: {share:.3f} × the requests/s and {p99:.3f} × the p99 of without "
        f"(target within 10 %) — {verdict}"
    )
    if "skipped" in events:
        lines.append(f"Events: not measured: {events['skipped']}.")
    else:
        rate = summary(events["runs"]["while"])["rps"] * EVENTS_PER_POST
        lines.append(
            f"Events while recommendations are served: {rate:,.0f}/s (target ≥ {EVENTS_TARGET:,}) — "
            f"{'met' if rate >= EVENTS_TARGET else 'NOT met'}"
        )
        extra = events["stored"] - events["acknowledged"]
        kept = 0 <= extra <= events["in_flight_at_most"]
        lines.append(
            f"Events acknowledged {events['acknowledged']:,}, rows stored {events['stored']:,}: "
            + (
                f"every acknowledged event was stored; the {extra:,} more are batches in flight when wrk "
                "stopped (committed, their answers not counted)"
                if kept
                else "NOT every acknowledged event is stored once"
            )
        )
    if read is not None:
        lines.append(
            f"Results read after {read['events']:,} events and {read['answers']:,} answers: "
            f"{read['read_median_s']:.3f} s (target < {READ_TARGET_SECONDS:g} s) — "
            f"{'met' if read['read_max_s'] < READ_TARGET_SECONDS else 'NOT met'}"
        )
    return lines


def chart(serving, path):
    """Requests/s and p99 of each A/B run, in the order they ran."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [
        (f"{name} {i + 1}", run)
        for i, pair in enumerate(zip(serving["runs"]["without"], serving["runs"]["with"], strict=True))
        for name, run in zip(("without", "with"), pair, strict=True)
    ]
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    colors = ["tab:blue" if label.startswith("without") else "tab:orange" for label, _ in runs]
    x = np.arange(len(runs))
    left.bar(x, [run["rps"] for _, run in runs], color=colors)
    right.bar(x, [run["p99_ms"] for _, run in runs], color=colors)
    for axis, label in ((left, "requests/s"), (right, "p99 ms")):
        axis.set_xticks(x, [name for name, _ in runs], rotation=30, fontsize="small")
        axis.set_ylabel(label)
    figure.suptitle("Recommendations without (blue) and with (orange) a 50/50 experiment, in run order")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def run(ctx):
    """Measure assignment, serving with and without an experiment, and events; return the section."""
    sizes = plan(ctx)
    scale = data.scale_of(sizes["scale"])
    ctx.log(f"experiments: assignment per call, {sizes['rounds']} batches of {BATCH:,}")
    calls = calls_in_child(sizes["rounds"])
    requests = recommendation_requests(ctx, scale.name)
    url = database_url()
    problem = postgresql_problem(url)
    if problem:
        ctx.log(f"experiments: {problem}; serving over SQLite, events left out")
        folder, env, ids, staff = sqlite_registry(ctx, scale.name)
    else:
        folder, env, ids, staff = postgresql_registry(ctx, scale.name, url)
    database = "SQLite" if problem else "PostgreSQL"
    load_before = os.getloadavg()[0]
    with server.serving(env, folder, workers=2) as running:
        server.worker_versions(running.url, ids["cf-1"], 2, deadline_seconds=180, headers=staff)
        stop_running(running.url, staff, 2)
        ctx.log(
            f"experiments: serving at {scale.name} over {database}, {pairs(sizes)} × {sizes['seconds']} s"
        )
        serving = measure_serving(running, folder, staff, ids, sizes, requests)
        experiment_id = serving.pop("experiment_id")
        if problem:
            experiment_stop(running.url, staff, experiment_id, 2, wait=False)
            events = {"skipped": problem}
        else:
            ctx.log("experiments: events through the batch endpoint, a 50/50 experiment running")
            events = measure_events(running, folder, staff, experiment_id, sizes, requests, url)
    serving.update(database=database, load_before=load_before, load_after=os.getloadavg()[0])
    read = None
    if not problem:
        ctx.log(
            f"experiments: the results read after {sizes['read_answers']:,} answers and "
            f"{sizes['read_events']:,} events"
        )
        read = read_in_child(url, sizes)
    tables = [calls_table(calls, sizes["rounds"]), serving_table(serving, sizes, scale.label)]
    notes = verdicts(calls, serving, events, read)
    if "skipped" not in events:
        tables.append(events_table(events, sizes))
    if read is not None:
        tables.append(read_table(read))
    chart(serving, ctx.chart_path("experiments.png"))
    return Section(
        key="experiments",
        title="Experiments: assignment, serving with an experiment, events",
        command="python -m bench --only experiments",
        intro=" ".join(__doc__.split("\n\n", 1)[1].split()),
        tables=tables,
        charts=[
            Chart(path="experiments.png", alt="Requests/s and p99 without and with an experiment, per run")
        ],
        notes=notes,
        data={"sizes": sizes, "calls": calls, "serving": serving, "events": events, "read": read},
    )


if __name__ == "__main__":  # python -m bench.parts.experiments: the results read alone, full sizes
    print(json.dumps(read_in_child(database_url(), plan(type("Quick", (), {"quick": False})()))))
