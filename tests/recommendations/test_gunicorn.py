"""A real gunicorn with two workers serves the active version and swaps to a newly activated one.

The server and this test share a file SQLite database and media folder of their own; a short
Django script in a subprocess prepares them (migrate, two registered versions, a token).
"""

import time

import pytest
import requests

from tests.support.gunicorn import activate, gunicorn, prepare, server_env

pytestmark = pytest.mark.gunicorn

# The promise is the check interval (1 s) plus the load time; the rest is room for a busy
# machine. The real figure is measured by bench/faults.py (docs/RELIABILITY.md).
SWAP_SECONDS = 6.0


@pytest.fixture
def server(tmp_path):
    """Start gunicorn (2 workers) on a free loopback port; yield its URL, its token and the versions."""
    env = server_env(tmp_path)
    prepared = prepare(env, tmp_path)
    with gunicorn(env, tmp_path / "gunicorn.log", workers=2, threads=2) as url:
        yield {"url": url, "env": env, **prepared}


def worker_versions(url, until, want_workers=2):
    """Ask health on fresh connections until ``until`` is True for ``want_workers`` pids; return them."""
    seen = {}
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        report = requests.get(f"{url}/api/v1/health/", timeout=5).json()
        seen[report["pid"]] = (time.monotonic(), report["models"]["cf"]["id"])
        done = {pid: value for pid, value in seen.items() if until(value[1])}
        if len(done) >= want_workers:
            return done
    return seen


def test_both_workers_serve_the_newly_activated_version_within_two_seconds(server):
    url, (first, second) = server["url"], server["versions"]
    headers = {"Authorization": f"Token {server['token']}"}

    response = requests.get(f"{url}/api/v1/recommendations/C0001/?k=5", headers=headers, timeout=5)
    assert response.status_code == 200
    assert response.json()["model"]["cf"]["id"] == first
    assert requests.get(f"{url}/api/v1/recommendations/C0001/", timeout=5).status_code == 401
    before = worker_versions(url, lambda version: version == first)
    assert len(before) == 2, before

    activated = activate(server["env"], second)
    after = worker_versions(url, lambda version: version == second)

    assert len(after) == 2, after
    assert all(at - activated <= SWAP_SECONDS for at, _ in after.values()), after
    response = requests.get(f"{url}/api/v1/recommendations/C0001/?k=5", headers=headers, timeout=5)
    assert response.json()["model"]["cf"]["id"] == second
