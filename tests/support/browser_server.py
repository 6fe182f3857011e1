"""Run the app as ``make serve`` does: collected static files and a real gunicorn on a free loopback port.

The server gets a SQLite database, media folder, artifact root and static root of its own under a
temporary folder; a Django script run in a subprocess prepares them before it starts.
"""

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support import processes


@dataclass
class Server:
    url: str
    env: dict
    folder: Path

    def python(self, script, *args):
        """Run a Django script against the server's database; return its last line of output."""
        return run_python(script, self.env, *args)


def run_python(script, env, *args):
    """Run ``script`` (django.setup() already done) in a subprocess; return its last line of output."""
    return processes.run_python("import django\ndjango.setup()\n" + script, env, *args)


@contextmanager
def gunicorn_server(folder, *, setup="", workers=1, threads=4, extra_env=None):
    """Migrate, run ``setup``, collect static files, start gunicorn; yield a Server once it answers."""
    folder = Path(folder)
    env = processes.server_env(
        folder,
        **{
            "DJANGO_DEBUG": "false",
            "STATIC_ROOT": folder / "static",
            "HYBRIDREC_ARTIFACT_ROOTS": folder / "artifacts",
            **(extra_env or {}),
        },
    )
    (folder / "artifacts").mkdir(parents=True, exist_ok=True)
    processes.manage(env, "migrate", "--verbosity=0")
    if setup:
        run_python(setup, env)
    processes.manage(env, "collectstatic", "--noinput", "--verbosity=0")
    with processes.gunicorn(
        env, folder / "gunicorn.log", workers=workers, threads=threads, ready_path="/admin/login/"
    ) as server:
        yield Server(url=server.url, env=env, folder=folder)
