"""A worker killed with SIGKILL mid-stream: every event that got a 202 is in the table.

Two client threads post batches of events to a real gunicorn (2 workers, its own SQLite
database) without pause; once batches are being acknowledged, one worker is killed with
SIGKILL, gunicorn starts another, and the clients go on. Then the table is read directly:
every event of every acknowledged batch is there, and a batch that got no answer (cut by the
kill) is there entirely or not at all (one transaction).
"""

import os
import signal
import sqlite3
import threading
import time

import pytest
import requests

from tests.support import gunicorn as gunicorn_support
from tests.support import processes

pytestmark = [pytest.mark.gunicorn, pytest.mark.slow]

BATCH = 300

REPORTER = """
import django
django.setup()
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from rest_framework.authtoken.models import Token
user = get_user_model().objects.create_user("shop-frontend")
user.user_permissions.add(Permission.objects.get(content_type__app_label="feedback", codename="add_event"))
print(Token.objects.create(user=user).key)
"""


class Stream:
    """Client threads posting numbered batches; what each batch got back."""

    def __init__(self, url, token, threads=2):
        self.url, self.token = url, token
        self.acknowledged: dict[str, float] = {}  # batch name → when its 202 arrived
        self.unanswered: list[str] = []
        self.other: list[int] = []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(t,)) for t in range(threads)]

    def _run(self, thread):
        session = requests.Session()
        session.headers["Authorization"] = f"Token {self.token}"
        n = 0
        while not self.stop.is_set():
            name = f"t{thread}-b{n}"
            events = [{"type": "impression", "customer_id": name, "item_id": f"i{i}"} for i in range(BATCH)]
            try:
                answer = session.post(f"{self.url}/api/v1/events/", json={"events": events}, timeout=30)
            except requests.RequestException:
                self.unanswered.append(name)
                session = requests.Session()
                session.headers["Authorization"] = f"Token {self.token}"
            else:
                if answer.status_code == 202 and answer.json()["accepted"] == BATCH:
                    self.acknowledged[name] = time.monotonic()
                else:
                    self.other.append(answer.status_code)
            n += 1

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for thread in self.threads:
            thread.join(60)


def test_every_acknowledged_event_survives_a_worker_killed_with_sigkill(tmp_path):
    env = gunicorn_support.server_env(tmp_path, HYBRIDREC_THROTTLE_EVENTS="1000000/min")
    gunicorn_support.prepare(env, tmp_path)
    token = processes.run_python(REPORTER, env)
    with gunicorn_support.gunicorn(env, tmp_path / "gunicorn.log", workers=2, threads=2) as url:
        victim = processes.get(f"{url}/api/v1/health/live/").json()["pid"]
        with Stream(url, token) as stream:
            processes.wait_until(
                lambda: len(stream.acknowledged) >= 10, timeout=60, message="10 batches stored"
            )
            os.kill(victim, signal.SIGKILL)
            killed_at = time.monotonic()
            processes.wait_until(
                lambda: sum(at > killed_at for at in stream.acknowledged.values()) >= 10,
                timeout=90,
                message="10 batches stored after the kill",
            )
        pids = processes.worker_pids(url, 2)
    assert victim not in pids  # the killed worker was replaced
    assert stream.other == []

    with sqlite3.connect(tmp_path / "db.sqlite3") as db:
        stored = dict(
            db.execute("SELECT customer_id, COUNT(*) FROM feedback_event GROUP BY customer_id").fetchall()
        )
    lost = {name for name in stream.acknowledged if stored.get(name) != BATCH}
    assert lost == set()
    torn = {name: stored[name] for name in stream.unanswered if stored.get(name, BATCH) != BATCH}
    assert torn == {}
    print(
        f"{len(stream.acknowledged)} batches of {BATCH} acknowledged, all stored; "
        f"{len(stream.unanswered)} cut by the kill ({sum(n in stored for n in stream.unanswered)} of them stored whole)"
    )
