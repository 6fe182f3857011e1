"""Start a real gunicorn serving hybridrec on a free loopback port, with its own database and media.

A short Django script run in a subprocess (``python``) prepares the server's database: migrate,
two registered and verified CF versions (the first active) and a token. Servers are waited on
through ``/api/v1/health/live/`` and ``/ready/``, never with fixed sleeps.
"""

import json
from contextlib import contextmanager

from tests.support import processes
from tests.support.processes import worker_pids

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


def python(script, env, *args):
    """Run a Python snippet with ``env`` in the project folder; return the last line it printed."""
    return processes.run_python(script, env, *args)


def server_env(tmp_path, **overrides):
    """Return the environment of a server with its own SQLite database and media folder."""
    return processes.server_env(
        tmp_path, **{"HYBRIDREC_VERSION_CHECK_SECONDS": 1, "HYBRIDREC_PUBLIC_API": "false", **overrides}
    )


def prepare(env, folder):
    """Migrate the server's database and register two CF versions; return ids, files and tokens."""
    return json.loads(python(SETUP, env, str(folder)))


def activate(env, version_id):
    """Activate a version from another process; return the monotonic time it was committed."""
    return float(python(ACTIVATE, env, str(version_id)))


def registry(env):
    """Return the registry as the server sees it: versions by id (as str) and audit rows."""
    return json.loads(python(REGISTRY, env))


@contextmanager
def gunicorn(env, log_path, *, workers=2, threads=2, ready_timeout=90):
    """Run gunicorn with ``env`` on a free port until the block ends; yield its URL.

    Waits until one worker is ready and every worker answers, and fails with the log's tail when
    gunicorn exits early.
    """
    with processes.gunicorn(
        env, log_path, workers=workers, threads=threads, ready_timeout_seconds=ready_timeout
    ) as server:
        # A worker answers only after it loaded its model (post_worker_init): wait for all.
        worker_pids(server.url, workers, timeout=ready_timeout)
        yield server.url
