"""With REDIS_URL the throttle counts one client once across gunicorn workers, not once per worker."""

import os
import threading
import time

import pytest
import requests

from tests.conftest import skip_or_fail
from tests.support.ops_servers import gunicorn, prepare

pytestmark = [pytest.mark.gunicorn, pytest.mark.redis, pytest.mark.slow]

RATE = 10
REQUESTS = 60
THREADS = 6


def redis_url():
    url = os.environ.get("HYBRIDREC_TEST_BROKER_URL")
    if not url:
        skip_or_fail("HYBRIDREC_TEST_BROKER_URL is not set (the Redis the cache shares)")
    import redis

    try:
        redis.Redis.from_url(url).flushdb()
    except redis.RedisError as exc:
        skip_or_fail(f"Redis at {url} does not answer: {exc}")
    return url


def hammer(url):
    """Send REQUESTS requests from THREADS threads, each on a new connection; return the statuses."""
    statuses, lock = [], threading.Lock()
    per_thread = REQUESTS // THREADS

    def client():
        for _ in range(per_thread):
            status = requests.get(f"{url}/api/v1/recommendations/C0001/?k=3", timeout=10).status_code
            with lock:
                statuses.append(status)

    threads = [threading.Thread(target=client) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return statuses


def test_the_limit_holds_across_two_workers(tmp_path):
    cache = redis_url()
    prepare(tmp_path)
    with gunicorn(
        tmp_path,
        workers=2,
        threads=4,
        REDIS_URL=cache,
        HYBRIDREC_PUBLIC_API="true",
        HYBRIDREC_THROTTLE_RECOMMENDATIONS=f"{RATE}/hour",
    ) as (url, _):
        for _attempt in range(2):  # once more if the hour turned during the burst
            hour = int(time.time() // 3600)
            statuses = hammer(url)
            if int(time.time() // 3600) == hour:
                break
    assert len(statuses) == REQUESTS
    assert statuses.count(200) == RATE, statuses
    assert statuses.count(429) == REQUESTS - RATE
