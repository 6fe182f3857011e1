"""A real gunicorn for the operations tests, on its own SQLite file and media folder."""

import json
from contextlib import contextmanager

from tests.support import processes
from tests.support.processes import run_python

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
    return processes.server_env(folder, without=processes.SHARED_SERVICES, **extra)


def prepare(folder):
    """Migrate a fresh database in ``folder`` with one active CF version; return its id and a token."""
    folder.mkdir(parents=True, exist_ok=True)
    return json.loads(run_python(PREPARE, server_env(folder), str(folder)))


@contextmanager
def gunicorn(folder, *, workers=2, threads=2, ready_timeout_seconds=processes.READY_SECONDS, **extra_env):
    """Run gunicorn on a free loopback port; yield ``(url, log_path)``; stop it afterwards."""
    with processes.gunicorn(
        server_env(folder, **extra_env),
        folder / "gunicorn.log",
        workers=workers,
        threads=threads,
        ready_path="/api/v1/health/",
        ready_timeout_seconds=ready_timeout_seconds,
        log_mode="a",
    ) as server:
        yield server.url, server.log_path


def boot_gunicorn_expecting_failure(folder, timeout_seconds=60, **extra_env):
    """Start gunicorn with settings that should stop its boot; return ``(exit code, output)``."""
    return processes.boot_expecting_failure(server_env(folder, **extra_env), timeout_seconds=timeout_seconds)
