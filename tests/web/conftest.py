"""A real gunicorn on a free loopback port, with users, tokens and active CF and CB versions.

A short Django script in a subprocess prepares the server's own SQLite database and media
folder; the server's temporary folder is a folder of the test's, so a test can see whether a
request body was spooled to disk.
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

BASE_DIR = Path(__file__).resolve().parents[2]

SETUP = """
import json, django
django.setup()
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client
from rest_framework.authtoken.models import Token
from modelstore import services
from modelstore.bundles import write_bundle
from tests import factories

call_command("migrate", verbosity=0)
prepared = {"versions": {}}
for kind, arrays in (("cf", factories.cf_array_set(seed=0)), ("cb", factories.cb_array_set(seed=1))):
    path = write_bundle(f"{folder}/{kind}.joblib", kind=kind, arrays=arrays).path
    version = services.version_register(path=path, label=f"{kind}-one").version
    version = services.version_verify(version=version)
    services.version_activate(version=version)
    prepared["versions"][kind] = version.pk
User = get_user_model()
for name, person in (
    ("root", User.objects.create_superuser("root", password="pw-root-1")),
    ("staff", User.objects.create_user("staff", password="pw-staff-1", is_staff=True)),
):
    client = Client()
    client.force_login(person)
    prepared[name] = {
        "token": Token.objects.create(user=person).key,
        "session": client.cookies["sessionid"].value,
    }
print(json.dumps(prepared))
"""


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_python(script, env):
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=BASE_DIR, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip().splitlines()[-1]


def start_gunicorn(folder, app="hybridrec.wsgi:application", **settings):
    """Prepare and start gunicorn (1 worker, 2 threads) serving ``app``; return ``(process, info)``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tmp").mkdir(exist_ok=True)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "hybridrec.settings",
        "DATABASE_URL": f"sqlite:///{folder / 'db.sqlite3'}",
        "MEDIA_ROOT": str(folder / "media"),
        "HYBRIDREC_BUNDLE_CACHE_DIR": str(folder / "media" / "cache"),
        "HYBRIDREC_PUBLIC_API": "false",
        "PYTHONPATH": str(BASE_DIR),
        **settings,
    }
    prepared = json.loads(run_python(SETUP.replace("{folder}", str(folder)), env))
    port = free_port()
    env.update(
        GUNICORN_BIND=f"127.0.0.1:{port}",
        GUNICORN_WORKERS="1",
        GUNICORN_THREADS="2",
        TMPDIR=str(folder / "tmp"),
    )
    log = open(folder / "gunicorn.log", "w")  # noqa: SIM115 - closed by stop_gunicorn
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "hybridrec/gunicorn.conf.py", app],
        env=env,
        cwd=BASE_DIR,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    process.log = log
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            stop_gunicorn(process)
            pytest.fail((folder / "gunicorn.log").read_text()[-3000:])
        try:
            health = requests.get(f"{url}/api/v1/health/", timeout=5)
            if health.status_code == 200:
                break
        except requests.RequestException:
            pass  # not listening yet, or busy starting
        if time.monotonic() > deadline:
            stop_gunicorn(process)
            pytest.fail("gunicorn did not answer within 60 s")
        time.sleep(0.1)
    info = {
        **prepared,
        "url": url,
        "port": port,
        "pid": health.json()["pid"],
        "tmp": folder / "tmp",
        "media": folder / "media",
        "db": folder / "db.sqlite3",
        "env": env,
    }
    return process, info


def stop_gunicorn(process):
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)
    process.log.close()


@pytest.fixture(scope="module")
def gunicorn_server(tmp_path_factory):
    """A gunicorn with HYBRIDREC_MAX_UPLOAD_BYTES = 2 MiB that counts the body bytes it reads."""
    process, info = start_gunicorn(
        tmp_path_factory.mktemp("gunicorn"),
        app="tests.web.counting_wsgi:application",
        HYBRIDREC_MAX_UPLOAD_BYTES=str(2 * 1024 * 1024),
    )
    try:
        yield info
    finally:
        stop_gunicorn(process)
