"""The model version endpoints: listing, details, upload, verify, activate, rollback, permissions."""

import io
import pickle

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from modelstore.bundles import write_bundle
from modelstore.models import ActivationEvent, ModelVersion
from tests import factories

pytestmark = pytest.mark.django_db

MODELS = "/api/v1/models/"


def bundle_upload(tmp_path, *, kind="cf", seed=3, name="model.joblib"):
    arrays = factories.cf_array_set(seed=seed) if kind == "cf" else factories.cb_array_set(seed=seed)
    written = write_bundle(tmp_path / name, kind=kind, arrays=arrays)
    return SimpleUploadedFile(name, written.path.read_bytes(), content_type="application/octet-stream")


# --- reads ----------------------------------------------------------------------------------


@pytest.fixture
def viewer(client_for):
    """Return a client of someone who may read the registry (modelstore.view_modelversion)."""
    return client_for("staff+view_modelversion")


def test_versions_are_listed_with_the_registry_fields(viewer, cf_version, cf_version_two, cb_version):
    body = viewer.get(MODELS).json()

    assert body["count"] == 3
    labels = {entry["label"] for entry in body["results"]}
    assert labels == {"cf-one", "cf-two", "cb-one"}
    entry = next(entry for entry in body["results"] if entry["label"] == "cf-one")
    assert entry["is_active"] is True
    assert entry["sha256"] == cf_version.sha256
    assert {"status", "n_users", "n_items", "libraries", "created_at", "activated_at"} <= set(entry)


def test_versions_are_filtered_by_kind(viewer, cf_version, cb_version):
    body = viewer.get(MODELS, {"kind": "cb"}).json()
    assert [entry["label"] for entry in body["results"]] == ["cb-one"]


def test_an_unknown_kind_is_400_naming_kind(viewer):
    response = viewer.get(MODELS, {"kind": "xx"})
    assert response.status_code == 400
    assert "kind" in response.json()["errors"]


def test_a_version_by_id_or_label(viewer, cf_version):
    assert viewer.get(f"{MODELS}{cf_version.pk}/").json()["label"] == "cf-one"
    assert viewer.get(f"{MODELS}cf-one/").json()["id"] == cf_version.pk


@pytest.mark.parametrize("value", ["999999", "no-such-label", "9" * 40, "²"])
def test_an_unknown_version_is_404_naming_it(viewer, cf_version, value):
    response = viewer.get(f"{MODELS}{value}/")

    assert response.status_code == 404
    assert response.json()["id"] == value


def test_a_very_long_version_id_is_400(viewer):
    response = viewer.get(f"{MODELS}{'x' * 10_000}/")
    assert response.status_code == 400
    assert "id" in response.json()["errors"]


# --- the permission matrix ------------------------------------------------------------------------

ROLES = {
    # role: (upload, verify, activate/rollback)
    "anonymous": (401, 401, 401),
    "staff": (403, 403, 403),
    "staff+add_modelversion": ("ok", 403, 403),
    "staff+change_modelversion": (403, "ok", 403),
    "staff+activate_modelversion": (403, 403, "ok"),
    "superuser": ("ok", "ok", "ok"),
}


@pytest.mark.parametrize("role", ROLES)
def test_upload_needs_the_add_permission(role, client_for, tmp_path, django_capture_on_commit_callbacks):
    expected = ROLES[role][0]
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(role).post(MODELS, {"file": bundle_upload(tmp_path)}, format="multipart")

    if expected == "ok":
        assert response.status_code == 202, response.content
        assert ModelVersion.objects.count() == 1
    else:
        assert response.status_code == expected
        assert response.json()["code"] in {"not_authenticated", "permission_denied"}
        assert ModelVersion.objects.count() == 0


@pytest.mark.parametrize("role", ROLES)
def test_verify_needs_the_change_permission(
    role, client_for, cf_version_two, django_capture_on_commit_callbacks
):
    expected = ROLES[role][1]
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(role).post(f"{MODELS}{cf_version_two.pk}/verify/")

    assert response.status_code == (202 if expected == "ok" else expected)


@pytest.mark.parametrize("role", ROLES)
def test_activate_needs_the_activate_permission(role, client_for, cf_version, cf_version_two):
    expected = ROLES[role][2]
    response = client_for(role).post(f"{MODELS}{cf_version_two.pk}/activate/")

    cf_version_two.refresh_from_db()
    if expected == "ok":
        assert response.status_code == 200
        assert response.json()["is_active"] is True
        assert cf_version_two.is_active
    else:
        assert response.status_code == expected
        assert not cf_version_two.is_active


@pytest.mark.parametrize("role", ROLES)
def test_rollback_needs_the_activate_permission(role, client_for, cf_version, cf_version_two):
    from modelstore import services

    services.version_activate(version=cf_version_two)
    expected = ROLES[role][2]

    response = client_for(role).post(f"{MODELS}rollback/", {"kind": "cf"}, format="json")

    cf_version.refresh_from_db()
    if expected == "ok":
        assert response.status_code == 200
        assert response.json()["id"] == cf_version.pk
        assert cf_version.is_active
    else:
        assert response.status_code == expected
        assert not cf_version.is_active


# --- upload ----------------------------------------------------------------------------------------


def test_an_upload_is_registered_verified_and_can_be_activated(
    client_for, tmp_path, django_capture_on_commit_callbacks
):
    client = client_for("superuser")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            MODELS,
            {
                "file": bundle_upload(tmp_path),
                "notes": "weekly run",
                "label": "cf-weekly",
                "activate": "true",
            },
            format="multipart",
        )

    assert response.status_code == 202
    body = response.json()
    assert response["Location"] == f"{MODELS}{body['id']}/"
    assert (body["label"], body["notes"], body["kind"]) == ("cf-weekly", "weekly run", "cf")
    version = ModelVersion.objects.get(pk=body["id"])
    assert version.status == ModelVersion.Status.READY
    assert version.is_active
    assert client.get(f"{MODELS}{version.pk}/").json()["status"] == "ready"


def test_uploading_the_same_content_again_answers_200_with_the_existing_version(client_for, tmp_path):
    client = client_for("superuser")
    first = client.post(MODELS, {"file": bundle_upload(tmp_path)}, format="multipart")
    second = client.post(MODELS, {"file": bundle_upload(tmp_path, name="again.joblib")}, format="multipart")

    assert (first.status_code, second.status_code) == (202, 200)
    assert second.json()["id"] == first.json()["id"]
    assert "not_applied" not in second.json()  # nothing was asked that it did not do


def test_a_new_label_on_known_content_is_answered_as_not_applied(client_for, tmp_path):
    client = client_for("superuser")
    first = client.post(MODELS, {"file": bundle_upload(tmp_path), "label": "cf-monday"}, format="multipart")
    second = client.post(
        MODELS,
        {"file": bundle_upload(tmp_path, name="again.joblib"), "label": "cf-tuesday", "notes": "rerun"},
        format="multipart",
    )

    assert (first.status_code, second.status_code) == (202, 200)
    body = second.json()
    assert body["label"] == "cf-monday"
    assert body["not_applied"] == {
        "label": "not applied; the same content is registered as cf-monday",
        "notes": "not applied; the version registered as cf-monday keeps its notes",
    }
    assert ModelVersion.objects.get().label == "cf-monday"


def test_activate_on_upload_needs_the_activate_permission(client_for, tmp_path):
    response = client_for("staff+add_modelversion").post(
        MODELS, {"file": bundle_upload(tmp_path), "activate": "true"}, format="multipart"
    )

    assert response.status_code == 403
    assert ModelVersion.objects.count() == 0


def test_an_upload_of_the_wrong_kind_is_400_with_the_reason(client_for, tmp_path):
    response = client_for("superuser").post(
        MODELS, {"file": bundle_upload(tmp_path), "kind": "cb"}, format="multipart"
    )

    assert response.status_code == 400
    assert response.json()["code"] == "incompatible_bundle"
    assert "not cb" in response.json()["detail"]


def test_an_unsafe_upload_is_400_and_runs_nothing(client_for, tmp_path):
    marker = tmp_path / "ran"
    upload = SimpleUploadedFile("evil.joblib", pickle.dumps({"arrays": factories.Payload(marker)}))

    response = client_for("superuser").post(MODELS, {"file": upload}, format="multipart")

    assert response.status_code == 400
    assert response.json()["code"] == "unsafe_bundle"
    assert not marker.exists()
    assert ModelVersion.objects.count() == 0


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({}, "file"),
        ({"file": "not a file"}, "file"),
        ({"kind": "xx", "file": None}, "kind"),
    ],
)
def test_bad_upload_forms_are_400_naming_the_field(client_for, tmp_path, data, field):
    if data.get("file", "") is None:
        data["file"] = bundle_upload(tmp_path)
    response = client_for("superuser").post(MODELS, data, format="multipart")

    assert response.status_code == 400
    assert field in response.json()["errors"]


def test_an_empty_or_corrupt_upload_is_400(client_for):
    client = client_for("superuser")
    empty = client.post(MODELS, {"file": SimpleUploadedFile("e.joblib", b"")}, format="multipart")
    junk = client.post(MODELS, {"file": io.BytesIO(b"\x80\x04junk" * 100)}, format="multipart")

    assert empty.status_code == 400
    assert junk.status_code == 400
    assert junk.json()["code"] in {"corrupt_bundle", "incompatible_bundle", "unsafe_bundle"}


# --- registry rules as 400s --------------------------------------------------------------------------


def test_activating_a_version_that_is_not_ready_is_400(client_for, tmp_path, cf_version):
    from modelstore import services

    pending = services.version_register(
        path=write_bundle(tmp_path / "p.joblib", kind="cf", arrays=factories.cf_array_set(seed=4)).path
    ).version

    response = client_for("superuser").post(f"{MODELS}{pending.pk}/activate/")

    assert response.status_code == 400
    assert response.json()["code"] == "version_not_ready"


def test_rollback_with_nothing_to_roll_back_to_is_400(client_for, cf_version):
    response = client_for("superuser").post(f"{MODELS}rollback/", {"kind": "cf"}, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "nothing_to_roll_back"


def test_rollback_needs_a_valid_kind(client_for):
    response = client_for("superuser").post(f"{MODELS}rollback/", {"kind": "zz"}, format="json")

    assert response.status_code == 400
    assert "kind" in response.json()["errors"]


def test_activation_through_the_api_is_audited_and_served(client_for, api, cf_version, cf_version_two):
    from recommendations.serving import get_cache

    assert api.get("/api/v1/recommendations/C0001/").json()["model"]["cf"]["id"] == cf_version.pk

    client_for("superuser").post(f"{MODELS}{cf_version_two.pk}/activate/")
    get_cache()._next_check = 0.0
    api.get("/api/v1/recommendations/C0001/")
    get_cache().wait(10)

    assert api.get("/api/v1/recommendations/C0001/").json()["model"]["cf"]["id"] == cf_version_two.pk
    event = ActivationEvent.objects.first()
    assert (event.from_version_id, event.to_version_id) == (cf_version.pk, cf_version_two.pk)
    assert event.user.is_superuser


# --- download and authentication hints ------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "expected"),
    [("anonymous", 401), ("staff", 403), ("staff+view_modelversion", 200), ("superuser", 200)],
)
def test_a_version_file_downloads_with_the_view_permission(role, expected, client_for, cf_version):
    import hashlib

    response = client_for(role).get(f"{MODELS}{cf_version.pk}/file/")
    assert response.status_code == expected
    if expected != 200:
        assert response.json()["code"] in {"not_authenticated", "permission_denied"}
        return
    body = b"".join(response.streaming_content)
    assert hashlib.sha256(body).hexdigest() == cf_version.sha256 == response["X-Content-SHA256"]
    assert f'filename="{cf_version.label}.joblib"' in response["Content-Disposition"]


def test_a_downloaded_file_registers_as_the_same_version(client_for, cf_version, tmp_path):
    from modelstore import services

    response = client_for("superuser").get(f"{MODELS}{cf_version.label}/file/")
    path = tmp_path / "downloaded.joblib"
    path.write_bytes(b"".join(response.streaming_content))
    assert services.version_register(path=path).version.pk == cf_version.pk


def test_downloading_an_unknown_version_is_404(client_for):
    response = client_for("superuser").get(f"{MODELS}nope/file/")
    assert response.status_code == 404 and response.json()["code"] == "not_found"


def test_the_download_is_in_the_openapi_schema(api):
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    operation = schema["paths"]["/api/v1/models/{version}/file/"]["get"]
    assert "application/octet-stream" in operation["responses"]["200"]["content"]


def test_a_bearer_header_gets_a_hint_to_use_token(client_for):
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    client_for("user")  # a user with a token
    key = Token.objects.get().key
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    response = client.get(MODELS)
    assert response.status_code == 401 and response["WWW-Authenticate"] == "Token"
    body = response.json()
    assert body["code"] == "not_authenticated"
    assert "Authorization: Token <key>" in body["detail"] and "Bearer" in body["detail"]
    # Without a Bearer header the answer stays as it was.
    assert "Bearer" not in APIClient().get(MODELS).json()["detail"]
