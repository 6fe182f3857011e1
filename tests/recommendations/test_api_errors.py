"""Every edge under /api/ is a 4xx with the JSON body ``{"detail", "code"}``, never a 500 or a page."""

import json

import pytest
from django.db import connection
from django.test import Client

pytestmark = pytest.mark.django_db

MODELS = "/api/v1/models/"
NESTED = "[" * 100_000


def assert_json_error(response, status, code=None):
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert isinstance(body["detail"], str) and body["detail"]
    if code is not None:
        assert body["code"] == code
    return body


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", f"{MODELS}cf%00x/"),
        ("post", f"{MODELS}a%00b/verify/"),
        ("post", f"{MODELS}a%00b/activate/"),
        ("get", f"{MODELS}cf%1bx/"),
        ("get", "/api/v1/recommendations/C%00001/"),
        ("get", "/api/v1/items/I%0a0001/similar/"),
    ],
)
def test_control_characters_in_ids_are_400_naming_the_id(client_for, cf_version, method, path):
    response = getattr(client_for("superuser"), method)(path)

    body = assert_json_error(response, 400, "invalid")
    assert "control characters" in body["detail"]
    assert connection.vendor in {"sqlite", "postgresql"}  # on CI this ran against PostgreSQL


@pytest.mark.parametrize("path", ["/api/v1/recommendations/batch/", f"{MODELS}rollback/"])
def test_a_deeply_nested_json_body_is_400(client_for, cf_version, path):
    response = client_for("superuser").generic("POST", path, NESTED, content_type="application/json")

    body = assert_json_error(response, 400, "parse_error")
    assert "nested too deeply" in body["detail"]


@pytest.mark.parametrize("path", ["/api/v1/recommendations/batch/", f"{MODELS}rollback/"])
def test_a_50_mb_json_body_is_413_in_json(client_for, cf_version, path):
    body = json.dumps({"customer_ids": ["C0001"], "kind": "cf", "padding": "x" * 50_000_000})

    response = client_for("superuser").generic("POST", path, body, content_type="application/json")

    assert_json_error(response, 413, "too_large")


def test_a_wrong_host_header_is_400_in_json_under_the_api(cf_version):
    response = Client(HTTP_HOST="attacker.example").get("/api/v1/health/")

    assert_json_error(response, 400, "bad_host")


def test_a_wrong_host_header_outside_the_api_is_still_a_page():
    response = Client(HTTP_HOST="attacker.example").get("/admin/login/")

    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/html")


def test_a_content_length_over_the_data_limit_is_413_in_json(client_for, cf_version, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = json.dumps({"customer_ids": ["C0001"] * 200})

    response = client_for("superuser").generic(
        "POST", "/api/v1/recommendations/batch/", body, content_type="application/json"
    )

    assert_json_error(response, 413, "too_large")


@pytest.mark.parametrize("name", ["é" * 200 + ".joblib", "x" * 300 + ".joblib", "\u202e.joblib"])
def test_long_and_unicode_file_names_are_answered_in_json_with_a_row_per_file(
    client_for, tmp_path, name, media_files
):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from modelstore.bundles import write_bundle
    from modelstore.models import ModelVersion
    from tests import factories

    written = write_bundle(tmp_path / "cf.joblib", kind="cf", arrays=factories.cf_array_set(seed=3))
    upload = SimpleUploadedFile(name, written.path.read_bytes(), content_type="application/octet-stream")

    response = client_for("superuser").post(MODELS, {"file": upload}, format="multipart")

    assert response.status_code in {202, 400, 413}, response.content[:300]
    assert response["Content-Type"] == "application/json"
    stored = [name for name in media_files() if name.startswith("bundles/")]
    assert len(stored) == ModelVersion.objects.count() == (1 if response.status_code == 202 else 0)
