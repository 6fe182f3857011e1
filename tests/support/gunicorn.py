"""Start a real gunicorn serving hybridrec on a free loopback port, with its own database and media.

A short Django script run in a subprocess (``python``) prepares the server's database: migrate,
two registered and verified CF versions (the first active) and a token. Servers are waited on
through ``/api/v1/health/live/`` and ``/ready/``, never with fixed sleeps.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import requests

BASE_DIR = Path(__file__).resolve().parents[2]

SETUP = """
import json, sys, django
django.setup()
from django.contrib.auth import get_user_model
from django.core.management import call_command
from rest_framework.authtoken.models import Token
from modelstore import services
from modelstore.bundles import write_bundle
from modelstore.models import ModelVersion
from tests import factories

folder = sys.argv[1]
call_command("migrate", verbosity=0)
ids = []
for seed in (0, 1):
    path = write_bundle(f"{folder}/cf-{seed}.joblib", kind="cf", arrays=factories.cf_array_set(seed=seed)).path
    version = services.version_verify(version=services.version_register(path=path, label=f"cf-{seed}").version)
    ids.append(version.pk)
services.version_activate(version=ModelVersion.objects.get(pk=ids[0]))
reader = get_user_model().objects.create_user("gunicorn-reader")
staff = get_user_model().objects.create_user("gunicorn-staff", is_staff=True)
print(json.dumps({
    "versions": ids,
    "files": [str(ModelVersion.objects.get(pk=pk).file.path) for pk in ids],
    "token": Token.objects.create(user=reader).key,
    "staff_token": Token.objects.create(user=staff).key,
}))
"""

ACTIVATE = """
import sys, time, django
django.setup()
from modelstore import services
from modelstore.models import ModelVersion
services.version_activate(version=ModelVersion.objects.get(pk=int(sys.argv[1])))
print(time.monotonic())
"""

REGISTRY = """
import json, sys, django
django.setup()
from modelstore.models import ActivationEvent, ModelVersion
print(json.dumps({
    "versions": {v.pk: {"status": v.status, "is_active": v.is_active, "error": v.error}
                 for v in ModelVersion.objects.all()},
    "events": [{"action": e.action, "from": e.from_version_id, "to": e.to_version_id,
                "user": e.user_id, "reason": e.reason} for e in ActivationEvent.objects.all()],
}))
"""


def free_port():
    """Return a TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def python(script, env, *args):
    """Run a Python snippet with ``env`` in the project folder; return the last line it printed."""
    result = subprocess.run(
        [sys.executable, "-c", script, *args],
        env=env,
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.strip().splitlines()[-1]


def server_env(tmp_path, **overrides):
    """Return the environment of a server with its own SQLite database and media folder."""
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
    env.update({key: str(value) for key, value in overrides.items()})
    return env


def prepare(env, folder):
    """Migrate the server's database and register two CF versions; return ids, files and tokens."""
    return json.loads(python(SETUP, env, str(folder)))


def activate(env, version_id):
    """Activate a version from another process; return the monotonic time it was committed."""
    return float(python(ACTIVATE, env, str(version_id)))


def registry(env):
    """Return the registry as the server sees it: versions by id (as str) and audit rows."""
    return json.loads(python(REGISTRY, env))


def wait_until(condition, *, timeout, interval=0.05, message="condition"):
    """Call ``condition`` until it returns something truthy; return that, or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"{message} not met within {timeout} s"
        time.sleep(interval)


def get(url, **kwargs):
    """GET on a new connection; return the response, or None when the connection failed."""
    try:
        return requests.get(url, timeout=10, **kwargs)
    except requests.RequestException:
        return None


@contextmanager
def gunicorn(env, log_path, *, workers=2, threads=2, ready_timeout=60):
    """Run gunicorn with ``env`` on a free port until the block ends; yield its URL.

    Waits until one worker is ready and every worker answers, and fails with the log's tail when
    gunicorn exits early.
    """
    port = free_port()
    env = {**env, "GUNICORN_BIND": f"127.0.0.1:{port}", "GUNICORN_WORKERS": str(workers)}
    env["GUNICORN_THREADS"] = str(threads)
    log = open(log_path, "w")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "hybridrec/gunicorn.conf.py"],
        env=env,
        cwd=BASE_DIR,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"

    def ready():
        assert process.poll() is None, Path(log_path).read_text()[-3000:]
        response = get(f"{url}/api/v1/health/ready/")
        return response is not None and response.status_code == 200

    try:
        wait_until(ready, timeout=ready_timeout, interval=0.1, message="gunicorn ready")
        # A worker answers only after it loaded its model (post_worker_init): wait for all.
        worker_pids(url, workers, timeout=ready_timeout)
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        log.close()


def worker_pids(url, count, *, timeout=30):
    """Return the pids of ``count`` workers, asking health on new connections until each answered."""
    seen = set()

    def enough():
        response = get(f"{url}/api/v1/health/live/")
        if response is not None and response.status_code == 200:
            seen.add(response.json()["pid"])
        return len(seen) >= count

    wait_until(enough, timeout=timeout, interval=0.01, message=f"{count} workers answering")
    return seen
