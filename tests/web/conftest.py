"""A real gunicorn on a free loopback port, with users, tokens and active CF and CB versions.

A short Django script in a subprocess prepares the server's own SQLite database and media
folder; the server's temporary folder is a folder of the test's, so a test can see whether a
request body was spooled to disk.
"""

import json
from contextlib import contextmanager

import pytest

from tests.support import processes

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


@contextmanager
def serving(folder, app="hybridrec.wsgi:application", **settings):
    """Prepare and run gunicorn (1 worker, 2 threads) serving ``app``; yield what tests need to know."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tmp").mkdir(exist_ok=True)
    env = processes.server_env(folder, **{"HYBRIDREC_PUBLIC_API": "false", **settings})
    prepared = json.loads(processes.run_python(SETUP.replace("{folder}", str(folder)), env))
    with processes.gunicorn(
        # TMPDIR holds only spooled uploads; the metrics files go to a folder of their own.
        {**env, "TMPDIR": str(folder / "tmp"), "PROMETHEUS_MULTIPROC_DIR": str(folder / "metrics")},
        folder / "gunicorn.log",
        workers=1,
        threads=2,
        app=app,
        ready_path="/api/v1/health/",
    ) as server:
        yield {
            **prepared,
            "url": server.url,
            "port": server.port,
            "pid": server.pid,
            "tmp": folder / "tmp",
            "media": folder / "media",
            "db": folder / "db.sqlite3",
            "env": server.env,
        }


@pytest.fixture(scope="module")
def gunicorn_server(tmp_path_factory):
    """A gunicorn with HYBRIDREC_MAX_UPLOAD_BYTES = 2 MiB that counts the body bytes it reads."""
    with serving(
        tmp_path_factory.mktemp("gunicorn"),
        app="tests.web.counting_wsgi:application",
        HYBRIDREC_MAX_UPLOAD_BYTES=str(2 * 1024 * 1024),
    ) as info:
        yield info
