"""Swap benchmark: from an activation's commit to the last worker of two nodes serving it, under load.

    .venv/bin/python bench/swap.py                       # 5 rounds, Redis db 13 on loopback
    .venv/bin/python bench/swap.py --rounds 3 --redis redis://127.0.0.1:6379/5

Each round starts two gunicorn "nodes" on loopback (2 workers × 2 threads each) on one SQLite
database and media folder, with small test bundles (they load in milliseconds: the figure is
the announcement's reaction, not load time), and 4 clients asking both nodes for
recommendations on keep-alive connections. With Redis the nodes poll only every 30 s, so the
swap comes from the announcement; without it (``--polling``) they poll every second, as by
default. The figure is the commit to the latest ``loaded_at`` of the 4 workers; failed requests
are every non-200 answer or failed request during the round. Results also go to
bench/out/swap.json.
"""

import argparse
import json
import statistics
import sys
import tempfile
import threading
from contextlib import ExitStack
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(BASE_DIR))

from bench.faults import RECS, loaded_at  # noqa: E402
from tests.support.gunicorn import gunicorn, prepare, python, server_env  # noqa: E402
from tests.support.load import RecommendationLoad  # noqa: E402

# Activate, noting the time right after the commit, before the announcement is published.
ACTIVATE = """
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
WINDOW_SECONDS = 3.0
NODES, WORKERS = 2, 2


def one_round(folder, *, redis_url):
    """Run one activation across the nodes; return its seconds, requests and failures."""
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
    with ExitStack() as stack:
        urls = [
            stack.enter_context(gunicorn(env, folder / f"node-{n}.log", workers=WORKERS, threads=2))
            for n in range(NODES)
        ]
        for url in urls:
            loaded_at(url, staff, first, WORKERS)
        loads = [RecommendationLoad(f"{url}{RECS}", reader, clients=2) for url in urls]
        for load in loads:
            stack.enter_context(load)
        wall = float(python(ACTIVATE, env, str(second)))  # the commit, wall clock
        threading.Event().wait(WINDOW_SECONDS)
        for load in loads:
            load.__exit__()
        times = [at for url in urls for at in loaded_at(url, staff, second, WORKERS).values()]
    return {
        "seconds_to_last_worker": max(times) - wall,
        "requests": sum(len(load.answers) + len(load.failures) for load in loads),
        "failed_requests": sum(len(load.failures) for load in loads),
    }


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/13")
    parser.add_argument("--polling", action="store_true", help="no Redis: poll every second")
    args = parser.parse_args()
    redis_url = None if args.polling else args.redis
    rounds = []
    for number in range(args.rounds):
        with tempfile.TemporaryDirectory(prefix="hybridrec-swap-") as folder:
            result = one_round(Path(folder), redis_url=redis_url)
        rounds.append(result)
        print(f"round {number + 1}: {json.dumps(result)}", flush=True)
    seconds = [result["seconds_to_last_worker"] for result in rounds]
    print(
        f"{'polling every 1 s' if args.polling else 'Redis announcement'}: commit to the last of "
        f"{NODES * WORKERS} workers median {statistics.median(seconds):.3f} s, max {max(seconds):.3f} s; "
        f"{sum(r['requests'] for r in rounds)} requests, {sum(r['failed_requests'] for r in rounds)} failed"
    )
    out = BASE_DIR / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"swap{'-polling' if args.polling else ''}.json").write_text(json.dumps(rounds, indent=2))


if __name__ == "__main__":
    main()
