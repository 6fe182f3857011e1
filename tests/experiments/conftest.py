"""Fixtures for the experiment tests: registered CF versions and a fresh process cache."""

import pytest
from django.contrib.auth.models import Permission
from django.core.cache import cache as django_cache

from recommendations.experiments import exposures, services
from recommendations.serving import get_cache, reset_cache
from tests import factories
from tests.support import roles


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
def cf_version_three(register):
    """Return a third, ready but inactive CF version (seed 2)."""
    return register("cf", factories.cf_array_set(seed=2), label="cf-three")


@pytest.fixture
def api(client_for):
    """Return a client authenticated as an ordinary user (reads only)."""
    return client_for("user")


@pytest.fixture(autouse=True)
def empty_exposure_buffer():
    """End every test with this process's exposure buffer written, inside the test's transaction.

    Otherwise its flusher thread would keep trying to write rows of rolled-back experiments.
    """
    yield
    if exposures.buffer().pending():
        exposures.buffer().flush()


def notice_now(cache):
    """Run the cache's check now, in this thread and its transaction, as a due check would."""
    cache._next_check = 0.0
    cache._maybe_check()


@pytest.fixture
def reporter():
    """A client whose user holds feedback.add_event, and nothing else."""
    user = roles.person("user", username="shop-frontend")
    user.user_permissions.add(
        Permission.objects.get(content_type__app_label="feedback", codename="add_event")
    )
    return roles.api_client(user)


@pytest.fixture
def running(cf_version, cf_version_two):
    """Return a running 50/50 CF experiment that this process serves."""
    experiment = services.experiment_start(
        kind="cf",
        name="half",
        arms=[{"version": cf_version.pk, "share": 0.5}, {"version": cf_version_two.pk, "share": 0.5}],
    )
    notice_now(get_cache())
    assert get_cache().experiment("cf") is not None
    return experiment
