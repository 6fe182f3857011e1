"""Training tests share the serving tests' fixtures: a fresh model cache, versions, API clients by role."""

from tests.recommendations.conftest import (  # noqa: F401 - fixtures
    api,
    cb_version,
    cf_version,
    cf_version_two,
    fresh_model_cache,
    user,
)
