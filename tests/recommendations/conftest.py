"""Fixtures for the serving tests: a fresh process cache, registered versions, API clients by role."""

import threading

import pytest
from django.core.cache import cache as django_cache

from recommendations.serving import reset_cache
from tests import factories


@pytest.fixture(autouse=True)
def fresh_model_cache(settings):
    """Start and end every test with an empty process model cache and empty throttle counters."""
    settings.HYBRIDREC_VERSION_CHECK_SECONDS = 1.0
    settings.HYBRIDREC_CB_PRELOAD = "lazy"
    reset_cache()
    django_cache.clear()
    yield
    reset_cache()
    django_cache.clear()


@pytest.fixture
def cf_version(register):
    """Return the active CF version (seed 0)."""
    return register("cf", factories.cf_array_set(seed=0), activate=True, label="cf-one")


@pytest.fixture
def cf_version_two(register):
    """Return a second, ready but inactive CF version (seed 1)."""
    return register("cf", factories.cf_array_set(seed=1), label="cf-two")


@pytest.fixture
def cb_version(register):
    """Return the active CB version (with titles)."""
    return register("cb", factories.cb_array_set(seed=1), activate=True, label="cb-one")


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user("reader", password="pw-reader-1")


@pytest.fixture
def api(client_for):
    """Return a client authenticated as an ordinary user (reads only)."""
    return client_for("user")


@pytest.fixture
def run_in_threads():
    """Return ``run(function, n_threads, *args)``: call it from threads started together."""
    return _run_in_threads


def _run_in_threads(function, n_threads, *args):
    barrier = threading.Barrier(n_threads)
    results, errors = [None] * n_threads, []

    def worker(i):
        from django.db import connections

        try:
            barrier.wait()
            results[i] = function(*args)
        except Exception as exc:  # collected and re-raised in the test's thread
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n_threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    if errors:
        raise errors[0]
    return results
