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
import subprocess
import sys
import time
from datetime import datetime
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
        # The 10 M bundles (5 GB) are above the default 4 GiB budget.
        "HYBRIDREC_MAX_BUNDLE_BYTES": 64 * 1024**3,
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


# Activates the version whose id arrives on stdin and prints the wall time of its commit: started
# ahead, so Django's start is not part of the window being measured.
ACTIVATOR = """
import sys, time, django
django.setup()
from django.db import transaction
from modelstore import services
from modelstore.models import ModelVersion
print("ready", flush=True)
for line in sys.stdin:
    committed = []
    with transaction.atomic():
        transaction.on_commit(lambda: committed.append(time.time()))
        services.version_activate(version=ModelVersion.objects.get(pk=int(line)))
    print(committed[0], flush=True)
"""


class Activator:
    """A Django process on the benchmark's registry that activates versions on demand."""

    def __init__(self, env):
        self.process = subprocess.Popen(
            [sys.executable, "-c", ACTIVATOR],
            env=env,
            cwd=processes.ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        if self.process.stdout.readline().strip() != "ready":
            raise RuntimeError("the activating process did not start")

    def activate(self, version):
        """Activate ``version`` (an id); return the wall-clock time its transaction committed."""
        self.process.stdin.write(f"{version}\n")
        self.process.stdin.flush()
        return float(self.process.stdout.readline())

    def close(self):
        self.process.stdin.close()
        self.process.wait(30)


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


def registry_folder(ctx, scale):
    """Return the folder of the serving parts' registry for ``scale`` (kept between runs)."""
    return Path(ctx.data_dir) / f"serving-registry-{scale}"


def second_version(cf_path, folder):
    """Write (once) another CF version of ``cf_path``'s data: its item factors in reverse row order.

    Every array but ``item_factors`` is the memory-mapped original, so writing it streams the
    file instead of holding it; the answers differ wherever factors are used.
    """
    import numpy as np

    from modelstore.bundles import open_bundle, write_bundle

    path = folder / f"{cf_path.stem}-v2.joblib"
    if path.is_file():
        return path
    folder.mkdir(parents=True, exist_ok=True)
    arrays = dict(open_bundle(cf_path).arrays)
    arrays["item_factors"] = np.ascontiguousarray(np.asarray(arrays["item_factors"])[::-1])
    return write_bundle(path, kind="cf", arrays=arrays, metadata={"source": "bench", "variant": 2}).path


def loaded_at(url, headers, version, workers, *, timeout_seconds=180, since=None):
    """Return ``{pid: wall time it loaded version}`` once ``workers`` pids serve ``version`` (staff health).

    A worker that serves a model it loaded before ``since`` (kept from earlier, as a roll-back
    to the previous version may be) counts from the first health answer showing it serving.
    """
    seen = {}

    def all_seen():
        response = processes.get(f"{url}/api/v1/health/", headers=headers, timeout=5)
        if response is not None and response.status_code == 200:
            report = response.json()
            cf = report["models"]["cf"]
            if cf.get("id") == version and report["pid"] not in seen:
                loaded = datetime.fromisoformat(cf["loaded_at"]).timestamp()
                seen[report["pid"]] = loaded if since is None or loaded >= since else time.time()
        return len(seen) >= workers

    processes.wait_until(
        all_seen, timeout=timeout_seconds, interval=0.01, message=f"{workers} workers on version {version}"
    )
    return seen


def forget_stamps(folder):
    """Remove the verification stamps, so the next load of each version hashes its file again."""
    shutil.rmtree(Path(folder) / "media" / "cache" / "verified", ignore_errors=True)


def reverify(env):
    """Verify every version of the benchmark's registry again, as ``bundle_models --verify`` does."""
    subprocess.run(
        [sys.executable, "manage.py", "bundle_models", "--verify"],
        env=env,
        cwd=processes.ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
    )


def active_cf(env):
    """Return the id of the active CF version in the benchmark's registry, or None."""
    with sqlite3.connect(env["DATABASE_URL"].removeprefix("sqlite:///")) as connection:
        row = connection.execute(
            "SELECT id FROM modelstore_modelversion WHERE kind = 'cf' AND is_active"
        ).fetchone()
    return row[0] if row else None


def sha256_bytes_per_second(path, sample_bytes=256 * 1024 * 1024):
    """Return how fast sha256 reads ``path`` here: the first ``sample_bytes``, read twice, timed the second time."""
    import hashlib

    with open(path, "rb") as handle:
        sample = handle.read(sample_bytes)
    hashlib.sha256(sample).digest()
    started = time.perf_counter()
    hashlib.sha256(sample).digest()
    return len(sample) / (time.perf_counter() - started)


# The scales the swap part runs at: their registries also hold a second CF version.
SWAP_SCALES = ("tiny", "10m")


def served_registry(ctx, scale, *, cb=True):
    """Return ``(folder, env, ids, staff headers, cf path)`` of the parts' registry at ``scale``.

    It holds the scale's CF bundle as ``cf-1`` (active) and, with ``cb`` or at ``SWAP_SCALES``, its
    CB bundle as ``cb-1`` (active); at ``SWAP_SCALES`` also another CF version, ``cf-2``.
    """
    from bench import data

    name = data.scale_of(scale).name
    cb = cb or name in SWAP_SCALES
    cf_path = data.dataset(scale, "native", ctx)
    folder = registry_folder(ctx, name if cb else f"{name}-cf")
    wanted = [("cf", cf_path, "cf-1")]
    if cb:
        wanted.append(("cb", data.dataset(scale, "cb", ctx), "cb-1"))
    if name in SWAP_SCALES:
        wanted.append(("cf", second_version(cf_path, folder), "cf-2"))
    env, ids, staff = registry(folder, wanted, active={label for _, _, label in wanted if label != "cf-2"})
    if active_cf(env) != ids["cf-1"]:  # a run stopped between a swap and its roll-back
        activator = Activator(env)
        try:
            activator.activate(ids["cf-1"])
        finally:
            activator.close()
    return folder, env, ids, staff, cf_path
