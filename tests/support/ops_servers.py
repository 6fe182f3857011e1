"""A real gunicorn for the operations tests, on its own SQLite file and media folder."""

import json
import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import requests

from tests.support.celery_worker import ROOT, free_port

PREPARE = """
import json, sys, django
django.setup()
from django.contrib.auth import get_user_model
from django.core.management import call_command
from rest_framework.authtoken.models import Token
from modelstore import services
from modelstore.bundles import write_bundle
from tests import factories

call_command("migrate", verbosity=0)
path = write_bundle(sys.argv[1] + "/cf.joblib", kind="cf", arrays=factories.cf_array_set(seed=0)).path
version = services.version_verify(version=services.version_register(path=path, label="cf-0").version)
services.version_activate(version=version)
user = get_user_model().objects.create_user("ops-reader")
print(json.dumps({"version": version.pk, "token": Token.objects.create(user=user).key}))
"""


def server_env(folder, **extra):
    """Return the environment of a server on ``folder``'s database and media (no broker, no cache)."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"CELERY_BROKER_URL", "REDIS_URL", "HYBRIDREC_CACHE_URL", "DATABASE_URL"}
    }
    env.update(
        DJANGO_SETTINGS_MODULE="hybridrec.settings",
        DATABASE_URL=f"sqlite:///{folder / 'db.sqlite3'}",
        MEDIA_ROOT=str(folder / "media"),
        HYBRIDREC_BUNDLE_CACHE_DIR=str(folder / "media" / "cache"),
        PYTHONPATH=str(ROOT),
    )
    env.update(extra)
    return env


def run_python(script, env, *args, timeout_seconds=120):
    """Run a Django script in a subprocess; return its last output line."""
    result = subprocess.run(
        [sys.executable, "-c", script, *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout_seconds,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip().splitlines()[-1]


def prepare(folder):
    """Migrate a fresh database in ``folder`` with one active CF version; return its id and a token."""
    folder.mkdir(parents=True, exist_ok=True)
    return json.loads(run_python(PREPARE, server_env(folder), str(folder)))


@contextmanager
def gunicorn(folder, *, workers=2, threads=2, ready_timeout_seconds=60, **extra_env):
    """Run gunicorn on a free loopback port; yield ``(url, log_path)``; stop it afterwards."""
    port = free_port()
    env = server_env(
        folder,
        GUNICORN_BIND=f"127.0.0.1:{port}",
        GUNICORN_WORKERS=str(workers),
        GUNICORN_THREADS=str(threads),
        **extra_env,
    )
    log_path = folder / "gunicorn.log"
    log = open(log_path, "a")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "hybridrec/gunicorn.conf.py"],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + ready_timeout_seconds
        while True:
            assert process.poll() is None, Path(log_path).read_text()[-3000:]
            try:
                if requests.get(f"{url}/api/v1/health/", timeout=5).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, f"gunicorn did not answer within {ready_timeout_seconds} s"
            time.sleep(0.1)
        yield url, log_path
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
        log.close()


def boot_gunicorn_expecting_failure(folder, timeout_seconds=60, **extra_env):
    """Start gunicorn with settings that should stop its boot; return ``(exit code, output)``."""
    env = server_env(folder, GUNICORN_BIND=f"127.0.0.1:{free_port()}", GUNICORN_WORKERS="1", **extra_env)
    result = subprocess.run(
        [sys.executable, "-m", "gunicorn", "-c", "hybridrec/gunicorn.conf.py"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout_seconds,
        check=False,
    )
    return result.returncode, result.stdout + result.stderr
