"""A real gunicorn with two workers serves the active version and swaps to a newly activated one.

The server and this test share a file SQLite database and media folder of their own; a short
Django script in a subprocess prepares them (migrate, two registered versions, a token).
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

pytestmark = pytest.mark.gunicorn

BASE_DIR = Path(__file__).resolve().parents[2]
SWAP_SECONDS = 2.0

SETUP = """
import json, django
django.setup()
from django.contrib.auth import get_user_model
from django.core.management import call_command
from rest_framework.authtoken.models import Token
from modelstore import services
from modelstore.bundles import write_bundle
from modelstore.models import ModelVersion
from tests import factories

call_command("migrate", verbosity=0)
ids = []
for seed in (0, 1):
    path = write_bundle(f"{folder}/cf-{seed}.joblib", kind="cf", arrays=factories.cf_array_set(seed=seed)).path
    version = services.version_verify(version=services.version_register(path=path, label=f"cf-{seed}").version)
    ids.append(version.pk)
services.version_activate(version=ModelVersion.objects.get(pk=ids[0]))
user = get_user_model().objects.create_user("gunicorn-reader")
print(json.dumps({"versions": ids, "token": Token.objects.create(user=user).key}))
"""

ACTIVATE = """
import sys, time, django
django.setup()
from modelstore import services
from modelstore.models import ModelVersion
services.version_activate(version=ModelVersion.objects.get(pk=int(sys.argv[1])))
print(time.monotonic())
"""


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def python(script, env, *args):
    result = subprocess.run(
        [sys.executable, "-c", script, *args],
        env=env,
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.strip().splitlines()[-1]


@pytest.fixture
def server(tmp_path):
    """Start gunicorn (2 workers) on a free loopback port; yield its URL, its token and the versions."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "hybridrec.settings",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "MEDIA_ROOT": str(tmp_path / "media"),
        "HYBRIDREC_BUNDLE_CACHE_DIR": str(tmp_path / "media" / "cache"),
        "HYBRIDREC_VERSION_CHECK_SECONDS": "1",
        "HYBRIDREC_PUBLIC_API": "false",
        "PYTHONPATH": str(BASE_DIR),
    }
    prepared = json.loads(python(SETUP.replace("{folder}", str(tmp_path)), env))
    port = free_port()
    env.update(GUNICORN_BIND=f"127.0.0.1:{port}", GUNICORN_WORKERS="2", GUNICORN_THREADS="2")
    log = open(tmp_path / "gunicorn.log", "w")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "hybridrec/gunicorn.conf.py"],
        env=env,
        cwd=BASE_DIR,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, (tmp_path / "gunicorn.log").read_text()[-3000:]
            try:
                if requests.get(f"{url}/api/v1/health/", timeout=2).status_code == 200:
                    break
            except (requests.ConnectionError, requests.Timeout):
                pass  # still starting (a busy machine may take longer than one request's timeout)
            assert time.monotonic() < deadline, "gunicorn did not answer within 30 s"
            time.sleep(0.1)
        yield {"url": url, "env": env, **prepared}
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        log.close()


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

    activated = float(python(ACTIVATE, server["env"], str(second)))
    after = worker_versions(url, lambda version: version == second)

    assert len(after) == 2, after
    assert all(at - activated <= SWAP_SECONDS for at, _ in after.values()), after
    response = requests.get(f"{url}/api/v1/recommendations/C0001/?k=5", headers=headers, timeout=5)
    assert response.json()["model"]["cf"]["id"] == second
