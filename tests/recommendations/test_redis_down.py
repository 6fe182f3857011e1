"""With REDIS_URL set but Redis unreachable, the API keeps answering: throttles let requests through."""

import pytest
from django.test import override_settings

from tests.support.processes import free_port

pytestmark = pytest.mark.django_db


def test_recommendations_are_served_when_the_throttle_cache_cannot_be_reached(api, cf_version):
    unreachable = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{free_port()}/0",
        }
    }
    with override_settings(CACHES=unreachable):
        response = api.get("/api/v1/recommendations/C0001/?k=3")

    assert response.status_code == 200
    assert response.json()["model"]["cf"]["id"] == cf_version.pk
