"""Prometheus metrics: what is defined, how it is counted, and the ``/metrics`` door.

Under gunicorn every worker writes its numbers to files in ``PROMETHEUS_MULTIPROC_DIR`` (set
by ``gunicorn.conf.py`` before any worker imports this module), and ``/metrics`` sums them,
so one scrape sees every worker of the node. Without that variable (runserver, tests) the
numbers are this process's own.
"""

import hmac
import ipaddress
import os
import time
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

REQUESTS = Counter(
    "hybridrec_requests_total",
    "Requests answered, by route name, strategy, status and served versions.",
    ["endpoint", "strategy", "status", "version"],
)
REQUEST_SECONDS = Histogram(
    "hybridrec_request_seconds",
    "Time to answer a request, by route name, strategy, status and served versions.",
    ["endpoint", "strategy", "status", "version"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
FALLBACKS = Counter(
    "hybridrec_fallbacks_total",
    "Answers given by a fallback, by route name and fallback.",
    ["endpoint", "fallback"],
)
LOADED_VERSION = Gauge(
    "hybridrec_loaded_version",
    "The registry id of the version each worker serves, by kind (0: an artifacts folder).",
    ["kind"],
    multiprocess_mode="liveall",
)
LOAD_SECONDS = Histogram(
    "hybridrec_model_load_seconds",
    "Time to load a model, by kind.",
    ["kind"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)
SWAP_SECONDS = Histogram(
    "hybridrec_model_swap_seconds",
    "Time from noticing another active version to serving it (load included), by kind.",
    ["kind"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)
LOAD_ERRORS = Counter("hybridrec_model_load_errors_total", "Failed model loads, by kind.", ["kind"])
BUNDLE_CACHE = Counter(
    "hybridrec_bundle_cache_total",
    "Bundle files asked of the node cache: found there (hit), fetched from storage (download), "
    "or a bad local copy thrown away (discarded, then downloaded).",
    ["result"],
)
TASKS = Counter(
    "hybridrec_celery_tasks_total", "Celery task outcomes, by task name and outcome.", ["task", "outcome"]
)
EXPOSURES_LOST = Counter(
    "hybridrec_experiment_exposures_lost_total",
    "Counted answers never written, by reason: refused (the database refused the row), "
    "experiment_deleted (its arm was gone), exit (still buffered when the process ended).",
    ["reason"],
)


def count_download() -> None:
    """Count a bundle fetched from storage into the node cache."""
    BUNDLE_CACHE.labels(result="download").inc()


def count_cache_discard() -> None:
    """Count a bad node-cache copy discarded (and downloaded again)."""
    BUNDLE_CACHE.labels(result="discarded").inc()


def count_cache_hit() -> None:
    """Count a bundle found in the node cache."""
    BUNDLE_CACHE.labels(result="hit").inc()


def observe_load(kind: str, seconds: float) -> None:
    """Record a successful model load."""
    LOAD_SECONDS.labels(kind=kind).observe(seconds)


def count_load_error(kind: str) -> None:
    """Count a failed model load."""
    LOAD_ERRORS.labels(kind=kind).inc()


def observe_swap(kind: str, seconds: float) -> None:
    """Record how long a swap to another version took."""
    SWAP_SECONDS.labels(kind=kind).observe(seconds)


def count_lost_exposures(reason: str, count: int) -> None:
    """Count ``count`` exposures that will never be written, and why."""
    if count:
        EXPOSURES_LOST.labels(reason=reason).inc(count)


def set_loaded(kind: str, version_id: int | None) -> None:
    """Record the version this process now serves for ``kind``."""
    LOADED_VERSION.labels(kind=kind).set(version_id or 0)


# --- requests --------------------------------------------------------------------------------


class RequestMetricsMiddleware:
    """Count each request and its latency by route name, strategy, status and served versions."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        seconds = time.perf_counter() - started
        match = request.resolver_match
        endpoint = match.view_name if match is not None else "unmatched"
        answer = _first_answer(getattr(response, "data", None))
        strategy = str(answer.get("strategy") or "")
        labels = {
            "endpoint": endpoint,
            "strategy": strategy,
            "status": str(response.status_code),
            "version": _served_versions(answer.get("model")),
        }
        REQUESTS.labels(**labels).inc()
        REQUEST_SECONDS.labels(**labels).observe(seconds)
        if answer.get("fallback"):
            FALLBACKS.labels(endpoint=endpoint, fallback=str(answer["fallback"])).inc()
        return response


def _first_answer(data: object) -> dict:
    """Return the recommendation answer in a response's data (a batch's first), else ``{}``."""
    if isinstance(data, dict) and isinstance(data.get("results"), list) and data["results"]:
        data = data["results"][0]
    return data if isinstance(data, dict) else {}


def _served_versions(models: object) -> str:
    """Return ``"cf:<label>,cb:<label>"`` for the models an answer names, or ``""``."""
    if not isinstance(models, dict):
        return ""
    return ",".join(
        f"{kind}:{reference['label']}"
        for kind, reference in sorted(models.items())
        if isinstance(reference, dict) and reference.get("label")
    )


# --- Celery ----------------------------------------------------------------------------------


def connect_task_signals() -> None:
    """Count every Celery task's outcome (succeeded, failed, retried) through Celery's signals."""
    from celery import signals

    def counted(outcome: str) -> Callable[..., None]:
        def receiver(sender=None, **kwargs) -> None:
            name = getattr(sender, "name", None) or getattr(kwargs.get("request"), "task", None) or "unknown"
            TASKS.labels(task=str(name), outcome=outcome).inc()

        return receiver

    for signal, outcome in (
        (signals.task_success, "succeeded"),
        (signals.task_failure, "failed"),
        (signals.task_retry, "retried"),
    ):
        signal.connect(counted(outcome), weak=False, dispatch_uid=f"hybridrec-metrics-{outcome}")


# --- the door --------------------------------------------------------------------------------


def allowed(request: HttpRequest) -> bool:
    """Return True when the request carries HYBRIDREC_METRICS_TOKEN or comes from an allowed network."""
    token = settings.HYBRIDREC_METRICS_TOKEN
    given = request.headers.get("Authorization", "")
    if token and hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        return True
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(
        address in ipaddress.ip_network(network, strict=False) for network in settings.HYBRIDREC_METRICS_ALLOW
    )


def metrics_view(request: HttpRequest) -> HttpResponse:
    """Answer a Prometheus scrape: every worker's numbers in the text format, or 403."""
    if not allowed(request):
        return JsonResponse(
            {
                "detail": "Metrics need the bearer token (HYBRIDREC_METRICS_TOKEN) or an allowed "
                "network (HYBRIDREC_METRICS_ALLOW).",
                "code": "metrics_forbidden",
            },
            status=403,
        )
    registry = REGISTRY
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
