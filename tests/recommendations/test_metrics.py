"""/metrics: Prometheus text for allowed scrapers only, with requests, swaps and task outcomes counted."""

import pytest
from prometheus_client import REGISTRY
from rest_framework.test import APIClient

from modelstore import services
from modelstore.tasks import sweep_stuck_versions
from recommendations.serving import get_cache

pytestmark = pytest.mark.django_db

TOKEN = "scrape-secret-1"


@pytest.fixture(autouse=True)
def metrics_token(settings):
    settings.HYBRIDREC_METRICS_TOKEN = TOKEN
    settings.HYBRIDREC_METRICS_ALLOW = []


def value(name, **labels):
    return REGISTRY.get_sample_value(name, labels) or 0.0


def scrape(**headers):
    return APIClient().get("/metrics", **headers)


def test_metrics_are_refused_without_the_token_or_with_a_wrong_one():
    for headers in ({}, {"HTTP_AUTHORIZATION": "Bearer wrong"}, {"HTTP_AUTHORIZATION": TOKEN}):
        response = scrape(**headers)
        assert response.status_code == 403
        assert response.json()["code"] == "metrics_forbidden"
        assert b"hybridrec_" not in response.content


def test_an_allowed_network_needs_no_token(settings):
    settings.HYBRIDREC_METRICS_ALLOW = ["10.0.0.0/8"]
    assert scrape(REMOTE_ADDR="10.1.2.3").status_code == 200
    assert scrape(REMOTE_ADDR="192.168.1.5").status_code == 403


def test_a_recommendation_is_counted_by_route_strategy_status_and_served_version(api, cf_version):
    labels = {"endpoint": "api:recommendations", "strategy": "cf", "status": "200", "version": "cf:cf-one"}
    before = value("hybridrec_requests_total", **labels)
    fallbacks = value("hybridrec_fallbacks_total", endpoint="api:recommendations", fallback="popular")

    assert api.get("/api/v1/recommendations/C0001/?k=3").status_code == 200
    assert api.get("/api/v1/recommendations/nobody-knows-me/?k=3").json()["fallback"] == "popular"

    assert value("hybridrec_requests_total", **labels) == before + 2
    assert (
        value("hybridrec_fallbacks_total", endpoint="api:recommendations", fallback="popular")
        == fallbacks + 1
    )
    response = scrape(HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    assert 'hybridrec_request_seconds_bucket{endpoint="api:recommendations"' in response.content.decode()


# Committed rows, as in a server: an announced check starts by closing stale connections, which on
# PostgreSQL would also end a test's surrounding transaction.
def test_a_swap_is_timed_and_the_loaded_version_follows_it(transactional_db, api, cf_version, cf_version_two):
    assert api.get("/api/v1/recommendations/C0001/").status_code == 200
    assert value("hybridrec_loaded_version", kind="cf") == cf_version.pk
    swaps = value("hybridrec_model_swap_seconds_count", kind="cf")

    services.version_activate(version=cf_version_two)
    get_cache().check_now()

    assert value("hybridrec_model_swap_seconds_count", kind="cf") == swaps + 1
    assert value("hybridrec_loaded_version", kind="cf") == cf_version_two.pk


def test_celery_task_outcomes_are_counted():
    before = value("hybridrec_celery_tasks_total", task=sweep_stuck_versions.name, outcome="succeeded")
    sweep_stuck_versions.apply()
    assert (
        value("hybridrec_celery_tasks_total", task=sweep_stuck_versions.name, outcome="succeeded")
        == before + 1
    )
