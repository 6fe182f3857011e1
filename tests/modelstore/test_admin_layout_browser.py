"""The version list in a real browser: it fits a 1,280 px screen with long labels and every column."""

import pytest
from django.urls import reverse

from modelstore import services
from modelstore.models import ModelVersion
from tests import factories
from tests.modelstore.test_admin_browser import CHROMIUM, CHROMIUM_ARGS, TIMEOUT_MS, require_browser

SCREEN_WIDTH = 1280


@pytest.mark.browser
def test_the_version_list_fits_a_1280_px_screen(
    live_server, transactional_db, register, monkeypatch, tmp_path
):
    require_browser()
    from django.contrib.auth.models import User
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    admin = User.objects.create_superuser("admin", "admin@example.com", "a-long-test-password")
    metrics = {"k": 10, "test": "test.csv", "strategies": {"cf": {"ndcg": 0.1234}, "hybrid": {"ndcg": 0.1}}}
    for seed in range(3):
        version = register(
            "cf", factories.cf_array_set(seed=seed), label=f"cf-20261201-033000-{seed:06d}abcdef", user=admin
        )
        ModelVersion.objects.filter(pk=version.pk).update(metrics=metrics)
        services.version_activate(version=version, user=admin)
    register(
        "cb", factories.cb_array_set(), label="cb-20261201-033000-abcdef123456", activate=True, user=admin
    )
    ModelVersion.objects.filter(kind="cf").first().__class__.objects.filter(pk=version.pk).update(
        error="Training failed: " + "a long reason " * 20
    )

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": SCREEN_WIDTH, "height": 800})
            page.set_default_timeout(TIMEOUT_MS)
            page.goto(f"{live_server.url}{reverse('admin:index')}")
            page.fill("#id_username", "admin")
            page.fill("#id_password", "a-long-test-password")
            page.click("input[type=submit]")
            page.goto(f"{live_server.url}{reverse('admin:modelstore_modelversion_changelist')}")
            page.wait_for_selector("#result_list")
            page.screenshot(path=str(tmp_path / "changelist-1280.png"), full_page=True)
            widths = page.evaluate(
                """() => ({
                    page: document.documentElement.scrollWidth,
                    table: document.querySelector('#result_list').getBoundingClientRect().right,
                    last: Math.max(...[...document.querySelectorAll('#result_list thead th')]
                        .map(th => th.getBoundingClientRect().right)),
                })"""
            )
        finally:
            browser.close()
    assert widths["page"] <= SCREEN_WIDTH, widths
    assert widths["table"] <= SCREEN_WIDTH and widths["last"] <= SCREEN_WIDTH, widths
