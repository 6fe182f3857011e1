"""Who may read what: the registry needs the view permission, the schema follows HYBRIDREC_PUBLIC_API,
production settings pass ``check --deploy``, and the development secret key is the owner's only."""

import os
import secrets
import stat
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.django_db

BASE_DIR = Path(__file__).resolve().parents[2]
MODELS = "/api/v1/models/"

READ_ROLES = {
    "anonymous": 401,
    "user": 403,
    "staff": 403,
    "staff+add_modelversion": 403,
    "staff+activate_modelversion": 403,
    "staff+view_modelversion": 200,
    "staff+change_modelversion": 200,  # as in the admin, changing implies viewing
    "superuser": 200,
}


@pytest.mark.parametrize("role", READ_ROLES)
def test_listing_and_reading_versions_needs_the_view_permission(role, client_for, cf_version):
    client = client_for(role)

    listed = client.get(MODELS)
    shown = client.get(f"{MODELS}{cf_version.pk}/")

    assert listed.status_code == shown.status_code == READ_ROLES[role]
    if READ_ROLES[role] == 200:
        assert listed.json()["results"][0]["label"] == "cf-one"
        assert shown.json()["label"] == "cf-one"
    else:
        body = listed.json()
        assert set(body) == {"detail", "code"}  # no notes, errors or user names leak
        assert body["code"] in {"not_authenticated", "permission_denied"}
        assert "cf-one" not in listed.content.decode() + shown.content.decode()


@pytest.mark.parametrize("path", ["/api/schema/", "/api/docs/"])
def test_schema_and_docs_need_a_login_while_the_api_is_not_public(client, client_for, user, path):
    assert client.get(path).status_code == 401

    assert client_for("user").get(path).status_code == 200
    client.force_login(user)
    assert client.get(path).status_code == 200


def run_django(code, **env):
    result = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup()\n{code}"],
        cwd=BASE_DIR,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "hybridrec.settings", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    return result


def test_schema_and_docs_are_open_when_the_api_is_public():
    code = (
        "from django.test import Client\n"
        "client = Client(HTTP_HOST='localhost')\n"
        "print(client.get('/api/schema/').status_code, client.get('/api/docs/').status_code)"
    )
    result = run_django(code, HYBRIDREC_PUBLIC_API="true")

    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["200", "200"]


PRODUCTION = {
    "DJANGO_DEBUG": "false",
    "ALLOWED_HOSTS": "recommendations.example.com",
    "DJANGO_SECURE_SSL_REDIRECT": "true",
    "DJANGO_SECURE_HSTS_SECONDS": "31536000",
    "DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS": "true",
    "DJANGO_SECURE_HSTS_PRELOAD": "true",
    "DJANGO_SESSION_COOKIE_SECURE": "true",
    "DJANGO_CSRF_COOKIE_SECURE": "true",
    "DJANGO_CSRF_TRUSTED_ORIGINS": "https://recommendations.example.com",
    "DJANGO_SECURE_PROXY_SSL_HEADER": "HTTP_X_FORWARDED_PROTO,https",
}


def check_deploy(**env):
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=BASE_DIR,
        env={**os.environ, "DJANGO_SECRET_KEY": secrets.token_urlsafe(50), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_passes_under_the_documented_production_variables():
    result = check_deploy(**PRODUCTION)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_names_what_is_missing_without_them():
    result = check_deploy(DJANGO_DEBUG="false")

    assert result.returncode != 0
    for warning in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert warning in result.stderr + result.stdout


def test_production_settings_redirect_to_https_but_not_health_probes():
    code = (
        "from django.test import Client\n"
        "client = Client(HTTP_HOST='recommendations.example.com')\n"
        "page = client.get('/admin/login/')\n"
        "print(page.status_code, page['Location'], client.get('/api/v1/health/').status_code != 301)"
    )
    result = run_django(code, DJANGO_SECRET_KEY=secrets.token_urlsafe(50), **PRODUCTION)

    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["301", "https://recommendations.example.com/admin/login/", "True"]


def test_the_development_secret_key_file_is_created_readable_by_its_owner_only(tmp_path, monkeypatch):
    from hybridrec import settings as project_settings

    # Were the mode set after the key was written, a process stopped in between would leave
    # the key readable by everyone: chmod must not be what protects it.
    monkeypatch.setattr(Path, "chmod", lambda self, mode: None)
    path = tmp_path / ".secret_key"
    old_umask = os.umask(0o022)
    try:
        key = project_settings._development_secret_key(path)
    finally:
        os.umask(old_umask)

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(key) >= 50
    assert project_settings._development_secret_key(path) == key  # kept, not regenerated
