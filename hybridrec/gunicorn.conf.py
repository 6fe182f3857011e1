"""Gunicorn settings for serving hybridrec: ``gunicorn -c hybridrec/gunicorn.conf.py``.

GUNICORN_BIND (default 127.0.0.1:8000), GUNICORN_WORKERS (default: the number of CPUs),
GUNICORN_THREADS (default 4; above 1 the threaded worker is used), GUNICORN_TIMEOUT (30 s),
GUNICORN_ACCESS_LOG ("-" for stdout; off by default), GUNICORN_LOG_LEVEL (info),
GUNICORN_CONTROL_SOCKET (off by default). With HYBRIDREC_STARTED_AT (epoch seconds, set by
``make demo``), the first worker logs how long after that the server first answered.
Every worker loads the active CF model as soon as it has loaded the app, so the first request
does not pay for it; memory-mapped bundles share their pages between workers. Each worker then
starts its own watcher thread, which notices an activation or a changed bundle file within
HYBRIDREC_VERSION_CHECK_SECONDS even when the worker gets no requests. It is started here,
after the fork, so it works with ``preload_app`` too (threads do not survive a fork).
With REDIS_URL a second thread listens for announced activations and checks at once.
Workers write their Prometheus metrics to PROMETHEUS_MULTIPROC_DIR (a fresh temporary folder
when unset; emptied at start when set), which ``/metrics`` sums; a worker's live gauges are
dropped when it exits.
"""

import os
import shutil
import tempfile
import threading
import time
import urllib.request

# One BLAS thread per worker: scoring one customer is a small matrix-vector product, and
# workers × BLAS threads would fight over the CPUs. Set before any worker imports numpy.
for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

# Set before any worker imports prometheus_client, which picks its storage on import.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="hybridrec-metrics-")
    _OWN_METRICS_DIR = True
else:
    _OWN_METRICS_DIR = False

wsgi_app = "hybridrec.wsgi:application"
bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000").split(",")
workers = int(os.environ.get("GUNICORN_WORKERS") or os.cpu_count() or 2)
threads = int(os.environ.get("GUNICORN_THREADS") or 4)
worker_class = "gthread" if threads > 1 else "sync"
timeout = int(os.environ.get("GUNICORN_TIMEOUT") or 30)
graceful_timeout = 30
keepalive = 5
accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None  # "-" logs requests to stdout
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
# Gunicorn 24+ opens a control socket in the home folder by default, which two servers on one
# machine would share; it is opt-in here (GUNICORN_CONTROL_SOCKET=/path/to/socket).
control_socket_disable = not os.environ.get("GUNICORN_CONTROL_SOCKET")
if not control_socket_disable:
    control_socket = os.environ["GUNICORN_CONTROL_SOCKET"]


def on_starting(server):
    """Refuse to boot with settings that would break requests; warn when static files are missing."""
    _empty_metrics_dir(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    from hybridrec.startup import exit_on_settings_problems

    exit_on_settings_problems()
    from django.conf import settings

    if not settings.DEBUG and not (settings.STATIC_ROOT / "staticfiles.json").is_file():
        server.log.warning(
            "static files are not collected in %s: they are served uncompressed, with short cache "
            "headers, until `manage.py collectstatic` runs (`make serve` runs it)",
            settings.STATIC_ROOT,
        )


def _empty_metrics_dir(folder):
    """Start from no numbers: files left by an earlier run would be summed with this one's."""
    os.makedirs(folder, exist_ok=True)
    for name in os.listdir(folder):
        if name.endswith(".db"):
            os.unlink(os.path.join(folder, name))


def child_exit(server, worker):
    """Drop the live gauges of a worker that exited."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    """Remove the metrics folder when this server made it."""
    if _OWN_METRICS_DIR:
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)


def post_worker_init(worker):
    """Load the active CF model (and start CB when HYBRIDREC_CB_PRELOAD=background), start the watcher."""
    from django.db import connections

    from recommendations.serving import get_cache

    cache = get_cache()
    model = cache.preload()
    if model is not None:
        worker.log.info(
            "worker %s serves cf %s (%s) loaded in %.3f s",
            worker.pid,
            model.target.label,
            model.target.source,
            model.load_seconds,
        )
    # The preload ran in the worker's main thread; requests open their own connections.
    connections.close_all()
    cache.start_watcher()
    started_at = os.environ.get("HYBRIDREC_STARTED_AT")
    if started_at and worker.age == 1:
        threading.Thread(target=_report_first_answer, args=(worker, float(started_at)), daemon=True).start()


def _report_first_answer(worker, started_at, timeout_seconds=120):
    """Ask /api/v1/health/ until the server answers; log the seconds since ``started_at``."""
    address = worker.cfg.bind[0]
    if address.startswith(("unix:", "fd://")):
        return
    host, _, port = address.rpartition(":")
    host = {"0.0.0.0": "127.0.0.1", "[::]": "[::1]", "": "127.0.0.1"}.get(host, host)
    url = f"http://{host}:{port}/api/v1/health/"
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                response.read()
        except OSError:
            time.sleep(0.05)
            continue
        worker.log.info("first answer %.1f s after the start; the demo is ready", time.time() - started_at)
        return
