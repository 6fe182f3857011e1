"""Experiments benchmark: the cost of assigning an arm, and serving with an experiment against without.

    .venv/bin/python bench/experiments.py              # 100,000 users, gunicorn, about two minutes
    .venv/bin/python bench/experiments.py --no-http    # the per-call costs only, a few seconds

Per call (this process, ``time.perf_counter_ns`` around batches of 1,000 calls): the stable
assignment ``Assignment.arm_index`` (blake2b of "experiment:customer", then a bisect), against a
bare blake2b digest of the same bytes measured in the same run; and what else an answer in an
experiment adds (a fresh request id, buffering the exposure). Target: assignment under 10 µs.

HTTP: two CF versions at ``--users`` scale are registered (``import_bundle``) and served by a
real gunicorn (2 workers); the load generator (wrk, or Python threads) asks for recommendations
of random customers, without an experiment and with a 50/50 one (started and stopped through
the API), alternating A, B, A, B so drift on a shared machine hits both alike. Target: with an
experiment, p99 and throughput within 10 % of without. Results also go to bench/out/experiments.json.
"""

import os

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from hashlib import blake2b  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

from bench import server  # noqa: E402
from bench.load import python_load, wrk_load  # noqa: E402
from bench.synthesis import SEED_FACTORS, SEED_ITEMS, synth_cf  # noqa: E402
from bench.tables import table  # noqa: E402

BATCH = 1000


def per_call_us(function, arguments, rounds):
    """Return (mean µs, p99 µs of batch means) of ``function(argument)`` over batches of BATCH calls."""
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


def bench_calls(rounds):
    """Return rows ``(name, mean µs, p99 µs)``: the digest baseline first."""
    from recommendations.api.answering import new_request_id
    from recommendations.experiments.assignment import Assignment
    from recommendations.experiments.exposures import ExposureBuffer

    customers = [f"C{i:07d}" for i in np.random.default_rng(3).integers(0, 10_000_000, size=50_000)]
    two, four = Assignment(42, [0.5, 0.5]), Assignment(42, [0.4, 0.2, 0.2, 0.2])
    buffer = ExposureBuffer()
    buffer._thread = object()  # measured without its flusher: only the append a request pays
    items = [f"I{i:05d}" for i in range(10)]

    def record(customer_id):
        buffer.record(request_id="r", experiment_id=42, arm_id=1, customer_id=customer_id, items=items)
        if buffer.pending() > 100_000:
            buffer._rows.clear()

    rows = [
        (
            "blake2b digest of the same bytes (baseline)",
            lambda c: blake2b(f"42:{c}".encode(), digest_size=8).digest(),
        ),
        ("assignment, 2 arms (Assignment.arm_index)", two.arm_index),
        ("assignment, 4 arms", four.arm_index),
        ("a fresh request id (uuid4 hex)", lambda c: new_request_id()),
        ("buffering one exposure (ExposureBuffer.record)", record),
    ]
    return [(name, *per_call_us(function, customers, rounds)) for name, function in rows]


def bench_http(args, env, folder):
    """Serve two CF versions; return throughput and latency without and with an experiment."""
    import requests

    paths = {}
    for seed in (1, 2):
        paths[seed] = write_cf(folder, args, seed)
    ids = server.register(env, [("cf", paths[1], "cf-1"), ("cf", paths[2], "cf-2")], active={"cf-1"})
    headers = {"Authorization": f"Token {server.staff_token(env)}"}
    use_wrk = args.client == "wrk" or (args.client == "auto" and shutil.which("wrk"))
    load = wrk_load if use_wrk else python_load
    rng = np.random.default_rng(5)
    urls = [f"/api/v1/recommendations/C{u:07d}/?k=10" for u in rng.integers(0, args.users, size=2000)]
    with server.serving(env, folder, workers=args.workers, threads=args.threads) as running:
        if (
            len(server.worker_versions(running.url, ids["cf-1"], args.workers, headers=headers))
            < args.workers
        ):
            raise SystemExit(f"bench: gunicorn workers did not all come up:\n{running.log_tail()}")
        load(running.port, urls, 2, args.connections, folder)  # warm-up
        runs = {"without an experiment (baseline)": [], "with a 50/50 experiment": []}
        for _ in range(args.repeats):
            runs["without an experiment (baseline)"].append(
                load(running.port, urls, args.seconds, args.connections, folder)
            )
            experiment = start(requests, running.url, headers, ids, args.workers)
            load(running.port, urls, 1, args.connections, folder)  # warm-up: the candidate's pages
            runs["with a 50/50 experiment"].append(
                load(running.port, urls, args.seconds, args.connections, folder)
            )
            stop(requests, running.url, headers, experiment, args.workers)
        exposures = count_exposures(requests, running.url, headers)
    return {
        "client": "wrk" if use_wrk else "python",
        "runs": runs,
        "summary": {
            name: {key: float(np.mean([run[key] for run in measured])) for key in ("rps", "p50", "p99")}
            | {"errors": sum(run["errors"] for run in measured)}
            for name, measured in runs.items()
        },
        "exposures_recorded": exposures,
    }


def write_cf(folder, args, seed):
    from modelstore.bundles import write_bundle

    return write_bundle(
        folder / f"cf-{seed}.joblib",
        kind="cf",
        arrays=synth_cf(args.users, args.items, args.factors, seed=seed),
    ).path


def workers_serving(requests, url, headers, experiment_id, workers, timeout=30):
    seen, deadline = set(), time.monotonic() + timeout
    while time.monotonic() < deadline and len(seen) < workers:
        report = requests.get(f"{url}/api/v1/health/", headers=headers, timeout=10).json()
        if report["experiments"].get("cf", {}).get("id") == experiment_id:
            seen.add(report["pid"])
        else:
            seen.discard(report["pid"])
    if len(seen) < workers:
        raise SystemExit(f"bench: workers did not pick up experiment {experiment_id}")


def post(requests, url, body, headers):
    """POST, trying again after a 503: SQLite refuses a second writer while a flusher writes."""
    for _ in range(10):
        response = requests.post(url, json=body, headers=headers, timeout=30)
        if response.status_code != 503:
            break
        time.sleep(0.2)
    response.raise_for_status()
    return response


def start(requests, url, headers, ids, workers):
    arms = [{"version": ids["cf-1"], "share": 0.5}, {"version": ids["cf-2"], "share": 0.5}]
    body = {"kind": "cf", "name": "bench", "arms": arms}
    experiment_id = post(requests, f"{url}/api/v1/experiments/", body, headers).json()["id"]
    workers_serving(requests, url, headers, experiment_id, workers)
    return experiment_id


def stop(requests, url, headers, experiment_id, workers):
    post(requests, f"{url}/api/v1/experiments/{experiment_id}/stop/", {"keep_control": True}, headers)
    workers_serving(requests, url, headers, None, workers)


def count_exposures(requests, url, headers):
    time.sleep(3)  # one flush interval (2 s) and a margin: the workers write what they buffered
    listing = requests.get(f"{url}/api/v1/experiments/", headers=headers, timeout=30).json()["results"]
    total = 0
    for experiment in listing:
        shown = requests.get(
            f"{url}/api/v1/experiments/{experiment['id']}/", headers=headers, timeout=30
        ).json()
        total += sum(arm["served"] for arm in shown["results"]["arms"])
    return total


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--items", type=int, default=SEED_ITEMS)
    parser.add_argument("--factors", type=int, default=SEED_FACTORS)
    parser.add_argument("--rounds", type=int, default=200, help="batches of 1,000 calls per row")
    parser.add_argument("--seconds", type=int, default=8, help="HTTP load per measurement")
    parser.add_argument("--repeats", type=int, default=2, help="A/B pairs of HTTP measurements")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--client", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument("--no-http", action="store_true", help="per-call costs only")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="hybridrec-bench-experiments-"))
    env = server.bench_env(folder)
    server.use_django(env)
    results = {}
    try:
        rows = bench_calls(args.rounds)
        results["calls"] = [{"call": name, "mean_us": mean, "p99_us": p99} for name, mean, p99 in rows]
        print(f"\nPer call, this process ({args.rounds} batches of {BATCH:,} calls; µs)\n")
        base = rows[0][1]
        table(
            ["call", "mean µs", "p99 µs (batch means)", "mean × baseline"],
            [(name, f"{mean:.2f}", f"{p99:.2f}", f"{mean / base:.2f}") for name, mean, p99 in rows],
        )
        worst = max(mean for name, mean, _ in rows if name.startswith("assignment"))
        print(f"assignment mean {worst:.2f} µs (target < 10 µs): {'met' if worst < 10 else 'NOT met'}\n")
        if not args.no_http:
            http = bench_http(args, env, folder)
            results["http"] = http
            summary = http["summary"]
            base_rps = summary["without an experiment (baseline)"]["rps"]
            base_p99 = summary["without an experiment (baseline)"]["p99"]
            print(
                f"GET /api/v1/recommendations/<id>/?k=10, {args.users:,} users × {args.items:,} items, "
                f"{args.workers} workers × {args.threads} threads, {args.connections} connections, "
                f"{args.repeats} × {args.seconds} s each ({http['client']})\n"
            )
            table(
                ["serving", "req/s", "p50 ms", "p99 ms", "req/s × baseline", "p99 × baseline", "non-200"],
                [
                    (
                        name,
                        f"{row['rps']:.0f}",
                        f"{row['p50']:.2f}",
                        f"{row['p99']:.2f}",
                        f"{row['rps'] / base_rps:.3f}",
                        f"{row['p99'] / base_p99:.3f}",
                        row["errors"],
                    )
                    for name, row in summary.items()
                ],
            )
            print(f"exposures recorded by the experiments: {http['exposures_recorded']:,}")
    finally:
        out = BASE_DIR / "bench" / "out"
        out.mkdir(parents=True, exist_ok=True)
        (out / "experiments.json").write_text(json.dumps(results, indent=2, default=str))
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
