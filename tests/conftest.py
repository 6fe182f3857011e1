"""Fixtures shared by the whole suite."""

import os

import pytest

from tests import factories
from tests.support.data import MISSING_DATA, data_dir

# On CI the real services must be there: tests that need them fail instead of skipping.
REQUIRE_SERVICES = os.environ.get("HYBRIDREC_REQUIRE_SERVICES") == "1"


def skip_or_fail(reason):
    """Skip a test whose service is missing, or fail it when the services are required."""
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason} (HYBRIDREC_REQUIRE_SERVICES=1)")
    pytest.skip(reason)


def pytest_terminal_summary(terminalreporter):
    """Say how many tests skipped for a data set that is not there, and how to point at it."""
    skipped = terminalreporter.stats.get("skipped", [])
    missing = [report for report in skipped if MISSING_DATA in str(getattr(report, "longrepr", ""))]
    if missing:
        terminalreporter.write_line(
            f"{len(missing)} skipped for missing data: {data_dir()} has no data sets "
            "(set HYBRIDREC_DATA_DIR to the folder holding online_retail/)",
            yellow=True,
        )


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    """Hash test passwords cheaply: the real hasher is slow by design and tests make many users."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _isolated_media(settings, tmp_path):
    """Give every test its own MEDIA_ROOT, bundle cache and artifact root."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.HYBRIDREC_BUNDLE_CACHE_DIR = tmp_path / "media" / "cache"
    settings.HYBRIDREC_ARTIFACT_ROOTS = [tmp_path / "artifacts"]
    settings.HYBRIDREC_CF_ARTIFACTS = None
    settings.HYBRIDREC_CB_ARTIFACTS = None
    (tmp_path / "artifacts").mkdir()


@pytest.fixture(autouse=True)
def _uncollected_static_files(settings):
    """Serve static files from the apps, as without collectstatic (tests that need it run it)."""
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture
def media_files(settings):
    """Return a function listing every file under MEDIA_ROOT (relative paths)."""

    def files():
        root = settings.MEDIA_ROOT
        if not root.exists():
            return []
        return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())

    return files


@pytest.fixture
def client_for():
    """Return ``client_for(role)``: an API client with the token of a new user of that role.

    Roles: anonymous, user, staff, staff+<codename> and superuser (``tests.support.roles``).
    """
    from tests.support import roles

    return lambda role: roles.api_client(roles.person(role))


@pytest.fixture
def superuser():
    """Return a superuser named root (password pw-root-1)."""
    from tests.support import roles

    return roles.person("superuser", username="root")


@pytest.fixture
def cf_folder(tmp_path):
    return factories.write_cf_folder(tmp_path / "artifacts" / "run1" / "cf")


@pytest.fixture
def cb_folder(tmp_path):
    return factories.write_cb_folder(tmp_path / "artifacts" / "run1" / "cb")


@pytest.fixture
def register(tmp_path):
    """Register, verify and optionally activate a native bundle built from an array set."""
    from modelstore import services
    from modelstore.bundles import write_bundle

    counter = iter(range(10_000))

    def register(kind, arrays, *, activate=False, label="", user=None, compress=None):
        path = tmp_path / f"upload-{next(counter)}.joblib"
        write_bundle(path, kind=kind, arrays=arrays, compress=compress)
        registered = services.version_register(
            path=path, label=label, user=user, verify=services.INLINE, activate=activate
        )
        registered.version.refresh_from_db()
        return registered.version

    return register
