"""The pages a person meets first: the landing page, and the API docs before logging in."""

import pytest

pytestmark = pytest.mark.django_db


def test_the_landing_page_says_what_this_is_and_links_to_admin_docs_and_health(client):
    page = client.get("/")

    assert page.status_code == 200
    html = page.content.decode()
    assert "hybrid recommender" in html
    for link in ('href="/admin/"', 'href="/api/docs/"', 'href="/api/schema/"', 'href="/api/v1/health/"'):
        assert link in html


def test_the_admins_view_site_link_leads_to_a_page(admin_client):
    index = admin_client.get("/admin/")

    assert 'href="/"' in index.content.decode()  # "View site"
    assert admin_client.get("/").status_code == 200


def test_anonymous_docs_page_is_a_401_with_a_login_link_that_comes_back(client, django_user_model):
    django_user_model.objects.create_user("staff", password="pw-staff-1", is_staff=True)
    page = client.get("/api/docs/", HTTP_ACCEPT="text/html")

    assert page.status_code == 401
    html = page.content.decode()
    assert 'href="/admin/login/?next=/api/docs/"' in html
    assert "Authorization: Token" in html

    login = client.post("/admin/login/?next=/api/docs/", {"username": "staff", "password": "pw-staff-1"})
    assert login.status_code == 302
    assert login["Location"] == "/api/docs/"
