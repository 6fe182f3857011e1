"""Fault tests share the serving tests' fixtures: a fresh model cache, API clients by role, threads."""

from tests.recommendations.conftest import (  # noqa: F401 - fixtures
    cf_version,
    client_for,
    fresh_model_cache,
    run_in_threads,
)
