"""Fault benchmark: how long serving takes to recover from each fault it handles, and what fails meanwhile.

    .venv/bin/python bench/faults.py               # every fault, 3 rounds each (about 3 minutes)
    .venv/bin/python bench/faults.py --rounds 5 --only activation

Each round starts a real gunicorn on loopback with its own SQLite database (or, for the
database fault, a throwaway PostgreSQL database behind a proxy this script cuts), small test
bundles (they load in milliseconds: the figures are the service's reaction, not load time;
the suite's swap part, ``python -m bench --only swap``, measures swaps of 10 M bundles) and HYBRIDREC_VERSION_CHECK_SECONDS=1.

- activation, idle: 4 workers get no request; from the activation's commit to the moment the
  last worker had the new version loaded (each worker's ``loaded_at`` in staff health, read
  after the window so the reading does not wake them).
- activation, under load: the same with 4 clients asking for recommendations on keep-alive
  connections; also the last answer naming the old version, and failed requests.
- changed in place / truncated / deleted: 2 workers under the same load; from the fault to the
  load's first answer from the last good version, to the last answer from the changed file,
  and to 20 answers in a row (each on a new connection) from the last good version.
- database down: public reads, token reads and ready while a proxy in front of PostgreSQL is
  cut, and from restoring it to every worker ready again.
Every loop is bounded; results also go to bench/out/faults.json.
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from functools import partial
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(BASE_DIR))

from tests.support.gunicorn import activate, gunicorn, prepare, server_env  # noqa: E402
from tests.support.load import RecommendationLoad  # noqa: E402
from tests.support.processes import get, status_of, wait_until, worker_pids  # noqa: E402
from tests.support.tcp_proxy import TcpProxy  # noqa: E402

WINDOW_SECONDS = 3.0
RECS = "/api/v1/recommendations/C0001/?k=5"


def loaded_at(url, staff, version, workers):
    """Return {pid: wall-clock time the worker loaded ``version``}, asking staff health."""
    seen = {}

    def all_seen():
        response = get(f"{url}/api/v1/health/", headers=staff)
        if response is not None and response.status_code == 200:
            cf = response.json()["models"]["cf"]
            if cf.get("id") == version:
                seen[response.json()["pid"]] = datetime.fromisoformat(cf["loaded_at"]).timestamp()
        return len(seen) >= workers

    wait_until(all_seen, timeout=60, interval=0.01, message="every worker on the new version")
    return seen


def activation(folder, *, under_load):
    env = server_env(folder)
    prepared = prepare(env, folder)
    first, second = prepared["versions"]
    reader = {"Authorization": f"Token {prepared['token']}"}
    staff = {"Authorization": f"Token {prepared['staff_token']}"}
    with gunicorn(env, folder / "gunicorn.log", workers=4, threads=2) as url:
        wait_until(lambda: len(loaded_at(url, staff, first, 4)) == 4, timeout=60)
        load = RecommendationLoad(f"{url}{RECS}", reader) if under_load else None
        if load:
            load.__enter__()
        try:
            activated = activate(env, second)  # the commit, on the machine's monotonic clock
            wall = time.time() - (time.monotonic() - activated)
            threading.Event().wait(WINDOW_SECONDS)
        finally:
            if load:
                load.__exit__()
        times = loaded_at(url, staff, second, 4)
    result = {"seconds_to_every_worker": max(times.values()) - wall}
    if load:
        old = [at for at, version in load.answers if version == first and at > activated]
        result.update(
            last_old_answer_seconds=(max(old) - activated) if old else 0.0,
            requests=len(load.answers) + len(load.failures),
            failed_requests=len(load.failures),
        )
    return result


def corrupt_in_place(path):
    path.chmod(0o644)
    with open(path, "r+b") as handle:
        handle.seek(path.stat().st_size // 2)
        handle.write(b"\xff" * 64)


def truncate(path):
    path.chmod(0o644)
    os.truncate(path, 0)


FILE_FAULTS = {"changed in place": corrupt_in_place, "truncated": truncate, "deleted": Path.unlink}


def file_fault(folder, fault):
    env = server_env(folder)
    prepared = prepare(env, folder)
    first, second = prepared["versions"]
    reader = {"Authorization": f"Token {prepared['token']}"}
    recs = RECS
    with gunicorn(env, folder / "gunicorn.log", workers=2, threads=2) as url:
        activate(env, second)

        def twenty_from(version):
            for _ in range(20):
                response = get(url + recs, headers=reader)
                if response is None or response.status_code != 200:
                    return False
                if response.json()["model"]["cf"]["id"] != version:
                    return False
            return True

        wait_until(lambda: twenty_from(second), timeout=60)
        with RecommendationLoad(url + recs, reader) as load:
            started = time.monotonic()
            FILE_FAULTS[fault](Path(prepared["files"][1]))
            wait_until(lambda: twenty_from(first), timeout=60)
            seconds = time.monotonic() - started
        old = [at - started for at, version in load.answers if version == second and at > started]
        good = [at - started for at, version in load.answers if version == first and at > started]
        return {
            "first_last_good_answer_seconds": min(good) if good else None,
            "twenty_in_a_row_seconds": seconds,
            "last_answer_from_changed_file_seconds": max(old) if old else 0.0,
            "requests": len(load.answers) + len(load.failures),
            "failed_requests": len(load.failures),
            "health": get(f"{url}/api/v1/health/").json()["reasons"],
        }


def database_down(folder):
    import psycopg

    admin = psycopg.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres", autocommit=True)
    name = f"hybridrec_bench_{uuid.uuid4().hex[:12]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    proxy = TcpProxy("127.0.0.1", 5432)
    try:
        env = server_env(
            folder,
            DATABASE_URL=f"postgresql://postgres@127.0.0.1:{proxy.port}/{name}",
            HYBRIDREC_PUBLIC_API="true",
        )
        prepared = prepare(env, folder)
        reader = {"Authorization": f"Token {prepared['token']}"}
        recs = RECS
        with gunicorn(env, folder / "gunicorn.log", workers=2, threads=2) as url:

            def ready_everywhere(status):
                return all(status_of(f"{url}/api/v1/health/ready/") == status for _ in range(10))

            worker_pids(url, 2)  # both workers up: none is still starting when the database goes
            cut = time.monotonic()
            proxy.cut()
            wait_until(lambda: status_of(f"{url}/api/v1/health/ready/") == 503, timeout=60)
            first_not_ready = time.monotonic() - cut
            wait_until(lambda: ready_everywhere(503), timeout=60)
            not_ready = time.monotonic() - cut
            public = [get(url + recs).status_code for _ in range(100)]
            with_token = [get(url + recs, headers=reader).status_code for _ in range(100)]
            models = [get(f"{url}/api/v1/models/", headers=reader).status_code for _ in range(20)]
            summary = get(f"{url}/api/v1/health/").json()
            restored = time.monotonic()
            proxy.restore()
            wait_until(lambda: ready_everywhere(200), timeout=60)
            return {
                "seconds_to_first_not_ready": first_not_ready,
                "seconds_to_ten_not_ready_in_a_row": not_ready,
                "public_reads": _counts(public),
                "token_reads": _counts(with_token),
                "models_list": _counts(models),
                "summary_status": summary["status"],
                "seconds_to_ready_after_restore": time.monotonic() - restored,
            }
    finally:
        proxy.close()
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def _counts(statuses):
    return {str(status): statuses.count(status) for status in sorted(set(statuses))}


CASES: dict[str, Callable[[Path], dict]] = {
    "activation, idle workers": lambda folder: activation(folder, under_load=False),
    "activation, under load": lambda folder: activation(folder, under_load=True),
    **{fault: partial(file_fault, fault=fault) for fault in FILE_FAULTS},
    "database down": database_down,
}


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", default="", help="run the cases whose name contains this text")
    args = parser.parse_args()
    results = {}
    for name, case in CASES.items():
        if args.only not in name:
            continue
        results[name] = []
        for round_number in range(args.rounds if name != "database down" else 1):
            with tempfile.TemporaryDirectory(prefix="hybridrec-faults-") as folder:
                result = case(Path(folder))
            results[name].append(result)
            print(f"{name} #{round_number + 1}: {json.dumps(result)}", flush=True)
    print()
    for name, rounds in results.items():
        for key in rounds[0]:
            values = [round_[key] for round_ in rounds]
            if all(isinstance(value, float) for value in values if value is not None):
                values = [value for value in values if value is not None] or [float("nan")]
                print(f"{name}: {key} median {statistics.median(values):.2f}, max {max(values):.2f}")
            elif all(isinstance(value, int) for value in values):
                print(f"{name}: {key} total {sum(values)}")
            else:
                print(f"{name}: {key} {values[-1]}")
    out = BASE_DIR / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "faults.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
