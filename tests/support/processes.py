"""Start and wait for the real processes tests and benchmarks use: gunicorn, Django scripts, commands.

One place for the environment of a server with its own database and media, free loopback ports,
readiness waits that tolerate a loaded machine (connection errors and timeouts are "not yet",
deadlines are generous, nothing sleeps a fixed time before looking) and stopping a process
group. Importable from ``bench/`` once the repository root is on ``sys.path``; knows no pytest.
"""

import os
import resource
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
READY_SECONDS = 90
GUNICORN = [sys.executable, "-m", "gunicorn", "-c", "hybridrec/gunicorn.conf.py"]
# Settings that would send a server's tasks, cache or database to the machine's shared services.
SHARED_SERVICES = ("CELERY_BROKER_URL", "REDIS_URL", "HYBRIDREC_CACHE_URL", "DATABASE_URL")


def free_port():
    """Return a TCP port that was free on 127.0.0.1 a moment ago (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_env(folder, *, without=(), **overrides):
    """Return the environment of a process on ``folder``'s own SQLite database and media folder.

    ``without`` names variables of this process's environment to leave out; ``overrides`` are set
    last (values turned into strings).
    """
    folder = Path(folder)
    env = {key: value for key, value in os.environ.items() if key not in without}
    env.update(
        DJANGO_SETTINGS_MODULE="hybridrec.settings",
        DATABASE_URL=f"sqlite:///{folder / 'db.sqlite3'}",
        MEDIA_ROOT=str(folder / "media"),
        HYBRIDREC_BUNDLE_CACHE_DIR=str(folder / "media" / "cache"),
        PYTHONPATH=str(ROOT),
    )
    env.update({key: str(value) for key, value in overrides.items()})
    return env


class ProcessFailed(AssertionError):
    """A helper process exited non-zero; the message ends with its stderr."""


def run(command, env, *, timeout_seconds=120):
    """Run ``command`` in the repository with ``env``; return its stdout, or raise ProcessFailed."""
    result = subprocess.run(
        command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout_seconds, check=False
    )
    if result.returncode != 0:
        raise ProcessFailed(
            f"{' '.join(map(str, command[:4]))} exited {result.returncode}:\n{result.stderr[-3000:]}"
        )
    return result.stdout


def last_line(output):
    lines = output.strip().splitlines()
    return lines[-1] if lines else ""


def run_python(script, env, *args, timeout_seconds=120):
    """Run a Python script (it calls ``django.setup()`` itself) in a subprocess; return its last line."""
    return last_line(
        run([sys.executable, "-c", script, *map(str, args)], env, timeout_seconds=timeout_seconds)
    )


def manage(env, *args, timeout_seconds=600):
    """Run ``manage.py`` with ``args`` in a subprocess; return its stdout."""
    return run([sys.executable, "manage.py", *map(str, args)], env, timeout_seconds=timeout_seconds)


def wait_until(condition, *, timeout, interval=0.05, message="condition"):
    """Call ``condition`` until it returns something truthy; return that, or fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{message} not met within {timeout} s")
        time.sleep(interval)


def get(url, timeout=10, **kwargs):
    """GET on a new connection; return the response, or None when the request failed or timed out."""
    try:
        return requests.get(url, timeout=timeout, **kwargs)
    except requests.RequestException:
        return None


def status_of(url, **kwargs):
    """Return the status code of a GET on a new connection, or None when the request failed."""
    response = get(url, **kwargs)
    return None if response is None else response.status_code


def stop(process, *, grace_seconds=30):
    """SIGTERM ``process`` (its whole group when it leads one), then SIGKILL after the grace time."""
    if process.poll() is not None:
        return
    try:
        group = os.getpgid(process.pid) == process.pid
    except ProcessLookupError:
        group = False

    def send(sig):
        with suppress(ProcessLookupError):
            if group:
                os.killpg(process.pid, sig)
            else:
                process.send_signal(sig)

    send(signal.SIGTERM)
    try:
        process.wait(grace_seconds)
    except subprocess.TimeoutExpired:
        send(signal.SIGKILL)
        process.wait(10)


@dataclass
class Server:
    """A running gunicorn: where it answers, its environment, process and log."""

    url: str
    port: int
    env: dict
    process: subprocess.Popen
    log_path: Path
    pid: int | None = None  # the pid of the worker that answered the readiness check

    def log_tail(self, chars=3000):
        return self.log_path.read_text(errors="replace")[-chars:]


@contextmanager
def gunicorn(
    env,
    log_path,
    *,
    workers=2,
    threads=2,
    app=None,
    ready_path="/api/v1/health/ready/",
    ready_statuses=(200,),
    ready_timeout_seconds=READY_SECONDS,
    log_mode="w",
    memory_limit_bytes=None,
):
    """Run gunicorn (``hybridrec/gunicorn.conf.py``) on a free loopback port until the block ends.

    Yields a Server once ``ready_path`` answered with one of ``ready_statuses`` (None: any); fails with the log's tail when gunicorn exits
    early or never answers. Stops the whole process group afterwards. ``memory_limit_bytes`` caps
    the address space of gunicorn and its workers (RLIMIT_AS): an allocation past it fails in that
    process instead of the machine running out of memory.
    """
    port = free_port()
    env = {
        **env,
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_WORKERS": str(workers),
        "GUNICORN_THREADS": str(threads),
    }
    log_path = Path(log_path)
    with open(log_path, log_mode) as log:
        process = subprocess.Popen(
            GUNICORN + ([app] if app else []),
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=address_space_limit(memory_limit_bytes),
        )
        server = Server(
            url=f"http://127.0.0.1:{port}", port=port, env=env, process=process, log_path=log_path
        )
        try:

            def ready():
                if process.poll() is not None:
                    raise AssertionError(f"gunicorn exited {process.returncode}:\n{server.log_tail()}")
                response = get(server.url + ready_path, timeout=5)
                if response is None or (ready_statuses and response.status_code not in ready_statuses):
                    return None
                return response

            answer = wait_until(
                ready, timeout=ready_timeout_seconds, interval=0.1, message=f"gunicorn answering {ready_path}"
            )
            if answer.headers.get("Content-Type", "").startswith("application/json"):
                server.pid = answer.json().get("pid")
            yield server
        finally:
            stop(process)


def address_space_limit(limit_bytes):
    """Return a ``preexec_fn`` that caps the child's address space at ``limit_bytes`` (None: no cap)."""
    if limit_bytes is None:
        return None

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (limit_bytes, limit_bytes))

    return limit


def worker_pids(url, count, *, timeout=READY_SECONDS, headers=None):
    """Return the pids of ``count`` workers, asking health on new connections until each answered."""
    seen = set()

    def enough():
        response = get(f"{url}/api/v1/health/live/", headers=headers)
        if response is not None and response.status_code == 200:
            seen.add(response.json()["pid"])
        return len(seen) >= count

    wait_until(enough, timeout=timeout, interval=0.01, message=f"{count} workers answering")
    return seen


def boot_expecting_failure(env, *, timeout_seconds=60):
    """Start gunicorn (one worker) with settings that should stop its boot; return ``(exit code, output)``."""
    env = {**env, "GUNICORN_BIND": f"127.0.0.1:{free_port()}", "GUNICORN_WORKERS": "1"}
    result = subprocess.run(
        GUNICORN, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout_seconds, check=False
    )
    return result.returncode, result.stdout + result.stderr
