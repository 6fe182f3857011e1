"""A real Celery worker for tests: a broker to use, a database to share, start, wait, kill whole."""

import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import kombu.pools
from django.db import connection

from hybridrec.celery import app
from tests.conftest import skip_or_fail
from tests.support import processes
from tests.support.processes import ROOT, wait_until


def broker_url(*, flush=True):
    """Return the test broker (HYBRIDREC_TEST_BROKER_URL), flushed; skip or fail when it is missing."""
    url = os.environ.get("HYBRIDREC_TEST_BROKER_URL")
    if not url:
        skip_or_fail("HYBRIDREC_TEST_BROKER_URL is not set (a Redis for the real-worker tests)")
    import redis

    try:
        client = redis.Redis.from_url(url)
        client.flushdb() if flush else client.ping()  # only this test index
    except redis.RedisError as exc:
        skip_or_fail(f"Redis at {url} does not answer: {exc}")
    return url


def database_url():
    """Return a URL of the test database that a worker process can open too."""
    settings = connection.settings_dict
    if connection.vendor == "postgresql":
        host = settings.get("HOST") or "127.0.0.1"
        port = settings.get("PORT") or 5432
        return f"postgresql://{settings.get('USER') or 'postgres'}@{host}:{port}/{settings['NAME']}"
    if connection.vendor == "sqlite" and not connection.is_in_memory_db():
        return f"sqlite:///{settings['NAME']}"
    skip_or_fail("a worker needs a database it can share: PostgreSQL (DATABASE_URL) or an SQLite file")


@contextmanager
def tasks_sent_to(url):
    """Send this process's tasks to the broker at ``url`` instead of running them in-process."""
    previous = {"broker_url": app.conf.broker_url, "task_always_eager": app.conf.task_always_eager}

    def reset_pools():
        # app.pool is kombu's process-wide pool for the URL: close and forget them all, so the
        # next use of the same URL (another test) gets a fresh pool, not a closed one.
        kombu.pools.reset()
        app._pool = None
        app.amqp._producer_pool = None

    app.conf.update(broker_url=url, task_always_eager=False)
    reset_pools()
    try:
        yield
    finally:
        app.conf.update(**previous)
        reset_pools()


class Worker:
    """A ``celery worker`` subprocess in its own process group, logging to a file."""

    def __init__(self, env, log_path, *, app_module="hybridrec", beat_schedule=None, pool="prefork"):
        self.log_path = Path(log_path)
        command = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            app_module,
            "worker",
            f"--pool={pool}",
            "--concurrency=1",
            "--loglevel=INFO",
            "--without-gossip",
            "--without-mingle",
            f"--hostname=test-{os.getpid()}-{time.monotonic_ns()}@localhost",
        ]
        if beat_schedule is not None:
            command += ["--beat", f"--schedule={beat_schedule}"]
        self.log = open(self.log_path, "a")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def output(self):
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout_seconds=90):
        """Wait until the worker logs that it is ready (generous: the machine may be busy)."""

        def ready():
            assert self.process.poll() is None, f"worker exited:\n{self.output()[-3000:]}"
            return " ready." in self.output()

        wait_until(ready, timeout=timeout_seconds, interval=0.2, message=f"worker ready ({self.log_path})")

    def kill_all(self):
        """SIGKILL every process of the worker (main process and pool) at once, like a lost machine."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(30)

    def stop(self):
        processes.stop(self.process)
        self.log.close()
