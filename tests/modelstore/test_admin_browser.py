"""The admin in a real browser against a real gunicorn, as ``make serve`` runs it.

Logs in, checks the admin's stylesheets applied (static files come from the app through
WhiteNoise, compressed and cacheable), uploads a bundle, waits for it to be ready, activates
it, and visits every admin page of the registry. A screenshot of each page is saved to
HYBRIDREC_SCREENSHOT_DIR when it is set, else to the test's temporary folder.
"""

import json
import os
import re
import shutil
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from modelstore.bundles import write_bundle
from tests import factories
from tests.conftest import skip_or_fail
from tests.support.browser_server import gunicorn_server

pytestmark = [pytest.mark.browser, pytest.mark.gunicorn]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 30_000
PASSWORD = "a-long-test-password"
# Django admin's header colour (--header-bg) and the registry's "ready" badge colour: both only
# show when admin/css/base.css and modelstore/admin.css were served and applied.
ADMIN_HEADER_BACKGROUND = "rgb(65, 118, 144)"
READY_BADGE_BACKGROUND = "rgb(46, 125, 50)"

SETUP = """
import json, sys
from django.contrib.auth import get_user_model
from modelstore import services
from modelstore.bundles import write_bundle
from tests import factories

folder = sys.argv[1]
get_user_model().objects.create_superuser("admin", "admin@example.com", sys.argv[2])
path = write_bundle(f"{folder}/cf-first.joblib", kind="cf", arrays=factories.cf_array_set(seed=0)).path
first = services.version_verify(version=services.version_register(path=path, label="cf-first").version)
services.version_activate(version=first)
factories.write_cf_folder(f"{folder}/artifacts/nightly/cf")
factories.write_cb_folder(f"{folder}/artifacts/nightly/cb")
print(json.dumps({"first": first.pk}))
"""

ACTIVATIONS = """
import json
from modelstore.models import ActivationEvent
print(json.dumps([[e.to_version.label, e.user.username if e.user else None] for e in ActivationEvent.objects.all()]))
"""


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
    """Yield a page in Debian's chromium (never a browser Playwright downloads), 1,280 px wide."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(TIMEOUT_MS)
            yield page
        finally:
            browser.close()


@pytest.fixture
def screenshots(tmp_path):
    """Return a function saving a full-page screenshot by name into the artifacts folder."""
    folder = Path(os.environ.get("HYBRIDREC_SCREENSHOT_DIR") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)

    def shoot(page, name):
        page.screenshot(path=str(folder / f"admin-{name}.png"), full_page=True)

    return shoot


def background(page, selector):
    return page.locator(selector).first.evaluate("element => getComputedStyle(element).backgroundColor")


def test_admin_is_styled_and_works_under_gunicorn(tmp_path, screenshots):
    require_browser()
    from playwright.sync_api import expect

    bundle = tmp_path / "cf-nightly.joblib"
    write_bundle(bundle, kind="cf", arrays=factories.cf_array_set(seed=3))
    server_dir = tmp_path / "server"
    server_dir.mkdir()
    setup = SETUP.replace("sys.argv[1]", repr(str(server_dir))).replace("sys.argv[2]", repr(PASSWORD))

    with gunicorn_server(server_dir, setup=setup) as server, chromium_page() as page:
        base = server.url
        page.goto(f"{base}/admin/")
        expect(page).to_have_title("Log in | Django site admin")
        assert background(page, "#header") == ADMIN_HEADER_BACKGROUND
        screenshots(page, "login")
        page.fill("#id_username", "admin")
        page.fill("#id_password", PASSWORD)
        page.click("input[type=submit]")
        expect(page.locator("#user-tools")).to_contain_text("admin")

        # The stylesheets came from the app: compressed, with far-future cache headers.
        stylesheet = page.locator("link[rel=stylesheet][href*='admin/css/base']").get_attribute("href")
        response = requests.get(f"{base}{stylesheet}", headers={"Accept-Encoding": "gzip"}, timeout=10)
        assert response.status_code == 200 and response.headers["Content-Encoding"] == "gzip"
        assert "max-age=315360000" in response.headers["Cache-Control"]

        changelist = f"{base}/admin/modelstore/modelversion/"
        page.goto(changelist)
        expect(page).to_have_title("Select model version to change | Django site admin")
        row = page.locator("#result_list tbody tr", has_text="cf-first")
        expect(row.locator(".hr-badge-active")).to_have_text("active")
        assert background(page, "#header") == ADMIN_HEADER_BACKGROUND
        assert background(page, ".hr-status-ready") == READY_BADGE_BACKGROUND
        expect(page.locator("a[href$='/admin/modelstore/modelversion/build/']").first).to_be_visible()
        screenshots(page, "changelist")

        page.goto(f"{changelist}add/")
        expect(page.locator("#id_file")).to_be_visible()
        assert background(page, "#header") == ADMIN_HEADER_BACKGROUND
        screenshots(page, "upload")
        page.set_input_files("#id_file", str(bundle))
        page.select_option("#id_kind", "cf")
        page.fill("#id_label", "cf-browser")
        page.fill("#id_notes", "uploaded from a browser")
        page.click("input[name=_submit]")
        expect(page.locator("ul.messagelist")).to_contain_text("cf-browser")

        page.goto(changelist)
        row = page.locator("#result_list tbody tr", has_text="cf-browser")
        # While a version is pending or verifying the list refreshes itself until it settles.
        expect(row.locator(".hr-status")).to_have_text("Ready")
        row.locator("a").first.click()
        expect(page).to_have_title(re.compile(r"^cf-browser .*Change model version"))
        assert background(page, "#header") == ADMIN_HEADER_BACKGROUND
        screenshots(page, "change")

        page.goto(changelist)
        row.locator("input.action-select").check()
        page.select_option("select[name=action]", "activate_selected")
        page.click("button[name=index]")
        expect(page.locator("h1")).to_contain_text("Activate cf-browser?")
        assert background(page, "#header") == ADMIN_HEADER_BACKGROUND
        screenshots(page, "activate-confirmation")
        page.click("input[name=_activate]")
        expect(page.locator("ul.messagelist")).to_contain_text("cf-browser")
        expect(row.locator(".hr-badge-active")).to_have_text("active")

        page.goto(f"{changelist}build/")
        expect(page.locator("#id_cf_folder")).to_contain_text("nightly")
        assert background(page, "#header") == ADMIN_HEADER_BACKGROUND
        screenshots(page, "build")

        page.goto(f"{base}/admin/recommendations/train/")
        expect(page.locator("input[type=file]").first).to_be_visible()
        assert background(page, "#header") == ADMIN_HEADER_BACKGROUND
        screenshots(page, "train")

        activations = json.loads(server.python(ACTIVATIONS))

    assert ["cf-browser", "admin"] in activations
