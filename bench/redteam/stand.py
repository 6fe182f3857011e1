"""The red-team stand: a throwaway PostgreSQL database, a registry with real versions, a capped gunicorn.

Everything lives in one temporary folder (media, artifact root, temp files, logs) and one
database named ``hybridrec_redteam_<random>`` on the local PostgreSQL; both are removed at the
end. What an attempt left behind is read straight from the database (rows) and the folder
(files), so checking costs no Django start.
"""

import json
import os
import secrets
import signal
import uuid
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from tests.support import processes

PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
WORKERS = 2
THREADS = 2
# Below what six people sharing the machine can lose at once: an allocation past it fails in
# that worker, never in the kernel's OOM killer.
MEMORY_LIMIT_BYTES = 3 * 1024**3

SETUP = """
import json, sys, django
django.setup()
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.management import call_command
from rest_framework.authtoken.models import Token
from modelstore import services
from modelstore.bundles import write_bundle
from modelstore.models import ModelVersion
from tests import factories

folder, password = sys.argv[1], sys.argv[2]
call_command("migrate", verbosity=0)
ids = {}
for label, kind, arrays in (
    ("cf-control", "cf", factories.cf_array_set(seed=0)),
    ("cf-candidate", "cf", factories.cf_array_set(seed=1)),
    ("cb", "cb", factories.cb_array_set()),
):
    path = write_bundle(f"{folder}/{label}.joblib", kind=kind, arrays=arrays).path
    version = services.version_verify(version=services.version_register(path=path, label=label).version)
    ids[label] = version.pk
for label in ("cf-control", "cb"):
    services.version_activate(version=ModelVersion.objects.get(pk=ids[label]))
users = get_user_model()
add_event = Permission.objects.get(content_type__app_label="feedback", codename="add_event")
staff = users.objects.create_user("redteam-staff", password=password, is_staff=True)
staff.user_permissions.add(
    add_event,
    *Permission.objects.filter(
        content_type__app_label="modelstore",
        codename__in=["add_modelversion", "change_modelversion", "view_modelversion", "activate_modelversion"],
    ),
)
client = users.objects.create_user("redteam-client")
client.user_permissions.add(add_event)
print(json.dumps({
    "versions": ids,
    "staff": {"username": staff.username, "password": password, "token": Token.objects.create(user=staff).key},
    "client_token": Token.objects.create(user=client).key,
}))
"""


@dataclass
class Stand:
    """The running stand: folder, environment, registry facts and the current gunicorn."""

    folder: Path
    env: dict
    database: str
    facts: dict
    stack: ExitStack = field(default_factory=ExitStack)
    server: processes.Server | None = None

    @property
    def artifacts(self):
        return self.folder / "artifacts"

    @property
    def url(self):
        assert self.server is not None
        return self.server.url

    def start(self):
        """Start gunicorn (2 workers, capped memory) and wait until every worker answers."""
        self.server = self.stack.enter_context(
            processes.gunicorn(
                self.env,
                self.folder / "gunicorn.log",
                workers=WORKERS,
                threads=THREADS,
                log_mode="a",
                memory_limit_bytes=MEMORY_LIMIT_BYTES,
            )
        )
        processes.worker_pids(self.server.url, WORKERS)

    def restart(self):
        """Kill gunicorn with every worker (one may still be busy with an attack) and start it again."""
        if self.server is not None:
            # At once: a worker stuck in a loop would hold a graceful stop for its whole timeout.
            with suppress(ProcessLookupError):
                os.killpg(self.server.process.pid, signal.SIGKILL)
        self.stack.close()
        self.stack = ExitStack()
        self.start()

    def workers(self):
        """Return the pids of the gunicorn master's worker processes."""
        assert self.server is not None
        pid = self.server.process.pid
        try:
            return sorted(int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split())
        except FileNotFoundError:
            return []

    def query(self, sql, *params):
        """Return the first column of the first row of ``sql`` on the stand's database."""
        import psycopg

        with psycopg.connect(dbname=self.database, autocommit=True, **PG) as connection:
            return connection.execute(sql, params).fetchone()[0]

    def left_rows(self, since):
        """Return the rows made after ``since`` (max ids) that are not failed: versions and training runs."""
        versions = self.query(
            "SELECT count(*) FROM modelstore_modelversion WHERE id > %s AND status <> 'failed'",
            since["versions"],
        )
        runs = self.query(
            "SELECT count(*) FROM recommendations_trainingrun WHERE id > %s AND status <> 'failed'",
            since["runs"],
        )
        return versions + runs

    def high_water(self):
        """Return the largest ids of versions and training runs so far (rows made later are new)."""
        return {
            "versions": self.query("SELECT coalesce(max(id), 0) FROM modelstore_modelversion"),
            "runs": self.query("SELECT coalesce(max(id), 0) FROM recommendations_trainingrun"),
        }

    def files(self):
        """Return every file and ``.staging-*`` entry under media/ and the server's temp folder."""
        found = set()
        for top in (self.folder / "media", self.folder / "tmp"):
            for path in top.rglob("*"):
                if path.is_file() or path.name.startswith(".staging-"):
                    found.add(path)
        return found


def _admin():
    import psycopg

    return psycopg.connect(dbname="postgres", autocommit=True, **PG)


@contextmanager
def stand(folder):
    """Yield a started Stand on a fresh PostgreSQL database in ``folder``; drop the database at the end."""
    folder = Path(folder)
    for name in ("media", "tmp", "artifacts", "metrics"):
        (folder / name).mkdir(parents=True, exist_ok=True)
    database = f"hybridrec_redteam_{uuid.uuid4().hex[:12]}"
    with _admin() as admin:
        admin.execute(f'CREATE DATABASE "{database}"')
    try:
        env = processes.server_env(
            folder,
            without=processes.SHARED_SERVICES,
            DATABASE_URL=f"postgresql://{PG['user']}@{PG['host']}:{PG['port']}/{database}",
            HYBRIDREC_ARTIFACT_ROOTS=folder / "artifacts",
            HYBRIDREC_VERSION_CHECK_SECONDS=1,
            HYBRIDREC_PUBLIC_API="false",
            HYBRIDREC_EXPERIMENT_FLUSH_SECONDS=0.5,
            TMPDIR=folder / "tmp",
            # The workers' metrics files are theirs, not something an attempt left behind.
            PROMETHEUS_MULTIPROC_DIR=folder / "metrics",
            OMP_NUM_THREADS=1,
            OPENBLAS_NUM_THREADS=1,
        )
        facts = json.loads(processes.run_python(SETUP, env, folder, secrets.token_urlsafe(16)))
        running = Stand(folder=folder, env=env, database=database, facts=facts)
        try:
            running.start()
            yield running
        finally:
            running.stack.close()
    finally:
        with _admin() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
