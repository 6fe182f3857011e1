"""The embedded SQLite database with several writing processes: a write waits, it does not fail.

Web workers flush exposures while an operator starts an experiment or uploads a bundle. With
SQLite's default deferred transactions, a transaction that read first and then writes while
another process holds the write lock gets "database is locked" at once (SQLite will not wait, to
avoid a deadlock), which the API answers as 503. The project's settings begin every transaction
by taking the write lock, waiting for it, so these writes succeed.
"""

from tests.support.processes import manage, run_python, server_env

READ_THEN_WRITE = """
import sqlite3, sys, threading, time
import django
django.setup()
from django.conf import settings
from django.contrib.auth.models import Group
from django.db import transaction

path = settings.DATABASES["default"]["NAME"]
held = threading.Event()

def other_process_writes():
    # Another writer (a worker's flusher, say): holds the write lock for a second.
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO auth_group(name) VALUES ('flusher')")
    held.set()
    time.sleep(1.0)
    other.execute("COMMIT")

failures = []
for attempt in range(3):
    Group.objects.filter(name="flusher").delete()
    writer = threading.Thread(target=other_process_writes)
    writer.start()
    held.wait()
    try:
        with transaction.atomic():
            Group.objects.count()  # the service reads first ...
            Group.objects.create(name=f"started-{attempt}")  # ... then writes
    except Exception as exc:
        failures.append(str(exc))
    writer.join()
    held.clear()
print(failures)
"""


def test_a_transaction_that_reads_then_writes_waits_for_another_writer(tmp_path):
    env = server_env(tmp_path)
    manage(env, "migrate", "--noinput", "-v0")

    assert run_python(READ_THEN_WRITE, env) == "[]"
