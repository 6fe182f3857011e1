"""A benchmark's own registry and gunicorn: a temporary folder, set up through the management commands.

Versions are registered with ``import_bundle``, activated with ``activate_model`` and the staff
token comes from ``createsuperuser`` and ``drf_create_token``, each run as a subprocess as an
operator would. The benchmark process itself opens the same SQLite database (``use_django``)
only to read when an activation was recorded.
"""

import json
import os
import re
import shutil
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path

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


def serving(env, folder, *, workers, threads=4):
    """Run gunicorn on the benchmark's folder (see ``tests.support.processes.gunicorn``)."""
    return processes.gunicorn(
        env, folder / "gunicorn.log", workers=workers, threads=threads, ready_timeout_seconds=180
    )


def registry(folder, bundles, *, active, env_extra=None):
    """Return ``(env, ids, staff headers)`` of a registry in ``folder`` holding ``bundles``, made once.

    bundles: ``(kind, path, label)``. Registering a large bundle copies and verifies it (about a
    minute at 10 M customers), so the folder is kept and reused while ``registry.json`` lists the
    same bundle files (path, size, mtime); anything else starts it again from nothing.
    """
    folder.mkdir(parents=True, exist_ok=True)
    env = bench_env(folder, **(env_extra or {}))
    marker = folder / "registry.json"
    wanted = [[kind, str(path), label, *_identity(path)] for kind, path, label in bundles]
    if marker.is_file():
        known = json.loads(marker.read_text())
        if known["bundles"] == wanted and known["active"] == sorted(active):
            return env, known["ids"], {"Authorization": f"Token {known['token']}"}
    marker.unlink(missing_ok=True)
    for name in ("db.sqlite3", "media"):
        path = folder / name
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    ids = register(env, bundles, active=set(active))
    token = staff_token(env)
    marker.write_text(json.dumps({"bundles": wanted, "active": sorted(active), "ids": ids, "token": token}))
    return env, ids, {"Authorization": f"Token {token}"}


def _identity(path):
    stat = os.stat(path)
    return [stat.st_size, stat.st_mtime_ns]


def activate_now(env, version):
    """Activate ``version`` (id or label) with ``activate_model``; return the wall-clock time of its commit."""
    processes.manage(env, "activate_model", version)
    with sqlite3.connect(env["DATABASE_URL"].removeprefix("sqlite:///")) as connection:
        (created_at,) = connection.execute(
            "SELECT created_at FROM modelstore_activationevent ORDER BY id DESC LIMIT 1"
        ).fetchone()
    return datetime.fromisoformat(created_at).replace(tzinfo=UTC).timestamp()


def worker_pids(master_pid):
    """Return the pids of a gunicorn master's workers (its child processes)."""
    children = Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()
    return sorted(int(pid) for pid in children)


def memory_of(pid):
    """Return ``{"rss": bytes, "pss": bytes, "pss_anon": bytes, "pss_file": bytes}`` from smaps_rollup."""
    fields = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, value, *_ = line.split()
        fields[name.rstrip(":")] = int(value) * 1024
    return {
        "rss": fields["Rss"],
        "pss": fields["Pss"],
        "pss_anon": fields.get("Pss_Anon", 0),
        "pss_file": fields.get("Pss_File", 0),
    }


def served_versions(url, headers, *, stop, interval_seconds=0.02):
    """Ask health on new connections until ``stop`` is set; return ``[(wall time, pid, cf id, ms)]``."""
    seen = []
    while not stop.is_set():
        started = time.perf_counter()
        response = processes.get(f"{url}/api/v1/health/", headers=headers, timeout=5)
        took_ms = (time.perf_counter() - started) * 1e3
        if response is not None and response.status_code == 200:
            report = response.json()
            seen.append((time.time(), report["pid"], report["models"]["cf"].get("id"), took_ms))
        stop.wait(interval_seconds)
    return seen


def bundles(ctx, scale):
    """Return the paths of the CF and CB bundles at ``scale`` (a name of ``bench.data.SCALES``)."""
    from bench import data

    return data.dataset(scale, "native", ctx), data.dataset(scale, "cb", ctx)


def registry_folder(ctx, scale):
    """Return the folder of the serving parts' registry for ``scale`` (kept between runs)."""
    return Path(ctx.data_dir) / f"serving-registry-{scale}"
