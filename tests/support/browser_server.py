"""Run the app as ``make serve`` does: collected static files and a real gunicorn on a free loopback port.

The server gets a SQLite database, media folder, artifact root and static root of its own under a
temporary folder; a Django script run in a subprocess prepares them before it starts.
"""

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

BASE_DIR = Path(__file__).resolve().parents[2]
READY_SECONDS = 60


@dataclass
class Server:
    url: str
    env: dict
    folder: Path

    def python(self, script, *args):
        """Run a Django script against the server's database; return its last line of output."""
        return run_python(script, self.env, *args)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_python(script, env, *args):
    """Run ``script`` (django.setup() already done) in a subprocess; return its last line of output."""
    result = subprocess.run(
        [sys.executable, "-c", "import django\ndjango.setup()\n" + script, *args],
        env=env,
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    return lines[-1] if lines else ""


@contextmanager
def gunicorn_server(folder, *, setup="", workers=1, threads=4, extra_env=None):
    """Migrate, run ``setup``, collect static files, start gunicorn; yield a Server once it answers."""
    folder = Path(folder)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "hybridrec.settings",
        "DJANGO_DEBUG": "false",
        "DATABASE_URL": f"sqlite:///{folder / 'db.sqlite3'}",
        "MEDIA_ROOT": str(folder / "media"),
        "STATIC_ROOT": str(folder / "static"),
        "HYBRIDREC_BUNDLE_CACHE_DIR": str(folder / "media" / "cache"),
        "HYBRIDREC_ARTIFACT_ROOTS": str(folder / "artifacts"),
        "PYTHONPATH": str(BASE_DIR),
        **(extra_env or {}),
    }
    (folder / "artifacts").mkdir(parents=True, exist_ok=True)
    run_python("from django.core.management import call_command\ncall_command('migrate', verbosity=0)", env)
    if setup:
        run_python(setup, env)
    run_python(
        "from django.core.management import call_command\ncall_command('collectstatic', interactive=False, verbosity=0)",
        env,
    )
    port = free_port()
    env.update(
        GUNICORN_BIND=f"127.0.0.1:{port}", GUNICORN_WORKERS=str(workers), GUNICORN_THREADS=str(threads)
    )
    log_path = folder / "gunicorn.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "hybridrec/gunicorn.conf.py"],
            env=env,
            cwd=BASE_DIR,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_until_ready(process, f"{url}/admin/login/", log_path)
            yield Server(url=url, env=env, folder=folder)
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


def _wait_until_ready(process, url, log_path):
    """Poll ``url`` until it answers 200; fail with gunicorn's log if the server dies or never answers."""
    deadline = time.monotonic() + READY_SECONDS
    while True:
        assert process.poll() is None, log_path.read_text()[-3000:]
        try:
            if requests.get(url, timeout=5).status_code == 200:
                return
        except (requests.ConnectionError, requests.Timeout):
            pass  # not listening yet, or a worker still loading
        assert time.monotonic() < deadline, f"gunicorn did not answer within {READY_SECONDS} s"
        time.sleep(0.1)
