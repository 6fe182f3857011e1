"""The admin in a real browser: log in, upload a bundle, wait for it to be ready, activate it."""

import shutil
from contextlib import contextmanager

import pytest
from django.urls import reverse

from modelstore.bundles import write_bundle
from modelstore.models import ActivationEvent, ModelVersion
from tests import factories
from tests.conftest import skip_or_fail

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 30_000


def require_browser():
    """Skip without chromium or playwright; fail instead when HYBRIDREC_REQUIRE_SERVICES=1."""
    if shutil.which(CHROMIUM) is None:
        skip_or_fail(f"{CHROMIUM} is not installed")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        skip_or_fail("the playwright package is not installed")


@contextmanager
def chromium_page():
    """Yield a page in Debian's chromium (never a browser Playwright downloads)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 900})
            page.set_default_timeout(TIMEOUT_MS)
            yield page
        finally:
            browser.close()


@pytest.mark.browser
def test_upload_verify_and_activate_in_a_browser(live_server, transactional_db, tmp_path, monkeypatch):
    require_browser()
    from django.contrib.auth.models import User

    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls stay
    # synchronous, and the live server answers from its own thread.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    User.objects.create_superuser("admin", "admin@example.com", "a-long-test-password")
    bundle = tmp_path / "cf-nightly.joblib"
    write_bundle(bundle, kind="cf", arrays=factories.cf_array_set())

    with chromium_page() as page:
        drive_upload_and_activation(page, live_server.url, bundle, tmp_path)

    version = ModelVersion.objects.get(label="cf-browser")
    assert version.is_active and version.status == ModelVersion.Status.READY
    assert ActivationEvent.objects.filter(to_version=version, user__username="admin").exists()


def drive_upload_and_activation(page, base_url, bundle, tmp_path):
    """Log in, upload ``bundle``, wait until it is ready, activate it and see the badge."""
    from playwright.sync_api import expect

    page.goto(f"{base_url}{reverse('admin:index')}")
    page.fill("#id_username", "admin")
    page.fill("#id_password", "a-long-test-password")
    page.click("input[type=submit]")
    expect(page.locator("#user-tools")).to_contain_text("admin")

    page.goto(f"{base_url}{reverse('admin:modelstore_modelversion_add')}")
    page.set_input_files("#id_file", str(bundle))
    page.select_option("#id_kind", "cf")
    page.fill("#id_label", "cf-browser")
    page.fill("#id_notes", "uploaded from a browser")
    page.click("input[name=_submit]")
    expect(page.locator("ul.messagelist")).to_contain_text("Uploaded “cf-browser”")

    page.goto(f"{base_url}{reverse('admin:modelstore_modelversion_changelist')}")
    row = page.locator("#result_list tbody tr", has_text="cf-browser")
    # While a version is pending or verifying the list refreshes itself until it settles.
    expect(row.locator(".hr-status")).to_have_text("Ready")

    row.locator("input.action-select").check()
    page.select_option("select[name=action]", "activate_selected")
    page.click("button[name=index]")
    expect(page.locator("h1")).to_contain_text("Activate cf-browser?")
    page.click("input[name=_activate]")

    expect(page.locator("ul.messagelist")).to_contain_text("“cf-browser” is now the active cf version")
    expect(row.locator(".hr-badge-active")).to_have_text("active")
    page.screenshot(path=str(tmp_path / "changelist.png"), full_page=True)
