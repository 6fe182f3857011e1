"""A benchmark's own registry and gunicorn: a temporary folder, set up through the management commands.

Versions are registered with ``import_bundle``, activated with ``activate_model`` and the staff
token comes from ``createsuperuser`` and ``drf_create_token``, each run as a subprocess as an
operator would. The benchmark process itself opens the same SQLite database (``use_django``)
only to read when an activation was recorded.
"""

import os
import re
import time

from tests.support import processes

UNTHROTTLED = {
    f"HYBRIDREC_THROTTLE_{scope}": "100000000/min"
    for scope in ("RECOMMENDATIONS", "BATCH", "MODELS", "HEALTH")
}


def bench_env(folder, **extra):
    """Return the environment of the benchmark's commands and server: its own database and media."""
    settings = {
        "HYBRIDREC_PUBLIC_API": "true",
        "HYBRIDREC_VERSION_CHECK_SECONDS": 1,
        "HYBRIDREC_LOG_LEVEL": "WARNING",
        "GUNICORN_LOG_LEVEL": "warning",
        **UNTHROTTLED,
    }
    return processes.server_env(folder, without=processes.SHARED_SERVICES, **{**settings, **extra})


def use_django(env):
    """Set Django up in this process on the benchmark's database and media (for write_bundle, reads)."""
    os.environ.update({key: env[key] for key in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "MEDIA_ROOT")})
    import django

    django.setup()


def register(env, bundles, *, active=()):
    """Migrate, then ``import_bundle`` each ``(kind, path, label)``; activate those in ``active``.

    Return ``{label: version id}``.
    """
    processes.manage(env, "migrate", "--noinput", "--verbosity=0")
    ids = {}
    for kind, path, label in bundles:
        activate = ["--activate"] if label in active else []
        output = processes.manage(env, "import_bundle", path, "--kind", kind, "--label", label, *activate)
        ids[label] = int(re.search(r"\bversion (\d+) ", output).group(1))
    return ids


def staff_token(env, username="bench-staff"):
    """Create a superuser without a password and return an API token for it (health shows staff details)."""
    processes.manage(
        env, "createsuperuser", "--noinput", "--username", username, "--email", f"{username}@localhost"
    )
    output = processes.manage(env, "drf_create_token", username)
    return re.search(r"Generated token (\w+)", output).group(1)


def activate(env, version):
    """Activate ``version`` (id or label) with ``activate_model``; return the wall-clock time it was recorded."""
    from modelstore.models import ActivationEvent

    processes.manage(env, "activate_model", version)
    return ActivationEvent.objects.order_by("-pk").first().created_at.timestamp()


def worker_versions(url, wanted, workers, *, deadline_seconds=60, headers=None):
    """Ask health on new connections until ``workers`` pids serve CF ``wanted``.

    Return ``{pid: (wall-clock time first seen, its CF report)}``; fewer pids when the deadline passed.
    """
    seen = {}
    deadline = time.monotonic() + deadline_seconds
    while time.monotonic() < deadline and len(seen) < workers:
        response = processes.get(f"{url}/api/v1/health/", headers=headers)
        if response is None or response.status_code != 200:
            time.sleep(0.05)
            continue
        report = response.json()
        if report["models"]["cf"].get("id") == wanted:
            seen.setdefault(report["pid"], (time.time(), report["models"]["cf"]))
    return seen


def serving(env, folder, *, workers, threads):
    """Run gunicorn on the benchmark's folder (see ``tests.support.processes.gunicorn``)."""
    return processes.gunicorn(
        env, folder / "gunicorn.log", workers=workers, threads=threads, ready_timeout_seconds=180
    )
