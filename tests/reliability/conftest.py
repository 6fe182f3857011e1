"""The serving fixtures (a fresh process cache, registered versions, clients by role) for fault tests."""

from tests.recommendations.conftest import (  # noqa: F401 - fixtures
    api,
    cf_version,
    cf_version_two,
    client_for,
    fresh_model_cache,
    user,
)
