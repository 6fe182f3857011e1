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


# --- the schema's word is the behaviour ---------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "k=",
        "strategy=",
        "weight=",
        "k=5&k=6",
        "k=5.0",
        "k=%205",
        "weight=%200.5",
        "weight=nan",
        "exclude=" + "a" * 201,
    ],
)
def test_query_parameters_are_taken_only_as_the_schema_describes_them(client_for, cf_version, query):
    response = client_for("user").get(f"/api/v1/recommendations/C0001/?{query}")

    body = assert_json_error(response, 400, "invalid")
    assert query.split("=")[0] in body["errors"]


def test_an_empty_exclude_leaves_nothing_out(client_for, cf_version):
    assert client_for("user").get("/api/v1/recommendations/C0001/?exclude=").status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {"customer_ids": []},
        {"customer_ids": "C0001"},
        {"customer_ids": [1]},
        {"customer_ids": ["C0001"], "k": "5"},
        {"customer_ids": ["C0001"], "k": True},
        {"customer_ids": ["C0001"], "weight": "0.5"},
        {"customer_ids": ["C0001"], "strategy": 1},
        {"customer_ids": ["C\x01"]},
    ],
)
def test_a_batch_body_is_taken_only_as_the_schema_describes_it(client_for, cf_version, body):
    response = client_for("user").post("/api/v1/recommendations/batch/", body, format="json")

    assert_json_error(response, 400, "invalid")


@pytest.mark.parametrize("path", ["/api/v1/recommendations/batch/", f"{MODELS}rollback/"])
def test_batch_and_rollback_take_json_only(client_for, cf_version, path):
    response = client_for("superuser").post(path, {"customer_ids": "C0001", "kind": "cf"})

    assert_json_error(response, 415, "unsupported_media_type")


@pytest.mark.parametrize(
    "query", ["kind=", "kind=cf&kind=cb", "limit=0", "limit=501", "limit=5.0", "offset=-1"]
)
def test_the_version_list_takes_its_parameters_strictly(client_for, cf_version, query):
    response = client_for("superuser").get(f"{MODELS}?{query}")

    assert_json_error(response, 400, "invalid")


def test_the_version_list_is_the_page_the_schema_describes(client_for, cf_version, cb_version):
    client = client_for("superuser")
    schema = client.get("/api/schema/", {"format": "json"}).json()
    answer = schema["paths"][MODELS]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    page = client.get(f"{MODELS}?limit=1").json()

    assert answer == {"$ref": "#/components/schemas/VersionPage"}
    assert set(schema["components"]["schemas"]["VersionPage"]["properties"]) == set(page)
    assert page["count"] == 2 and len(page["results"]) == 1 and page["next"]


def test_every_operation_documents_the_answers_gunicorn_and_throttling_give(client_for):
    schema = client_for("user").get("/api/schema/", {"format": "json"}).json()

    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            assert {"401", "414", "429"} <= set(operation["responses"]), (method, path)
            if "requestBody" in operation:
                assert {"413", "415"} <= set(operation["responses"]), (method, path)
