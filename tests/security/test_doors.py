"""Every hostile kind through every door: a clean refusal, nothing run or opened, files and rows one to one."""

import pickle
import stat
import tempfile
from io import StringIO
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from modelstore import services, tasks
from modelstore.bundles import content_hash, verify_arrays, write_bundle
from modelstore.models import ModelVersion
from tests import factories

from .hostile import corpus, secret_as_factors

pytestmark = pytest.mark.django_db

SECRET = (b"the server's secret key; " * 80)[:1440]  # as long as the factors it would become
MARKER_NAME = "marker"
DOORS = ("api", "admin", "import_bundle", "bundle_models", "verify")
BUNDLE_ERROR_CODES = {
    "unsafe_bundle",
    "corrupt_bundle",
    "incompatible_bundle",
    "bundle_too_large",
    "invalid_metadata",
}


@pytest.fixture(scope="module")
def place(tmp_path_factory):
    """Return the folder holding the marker (which must never appear) and the secret file."""
    folder = tmp_path_factory.mktemp("hostile")
    (folder / "secret").write_bytes(SECRET)
    return folder


@pytest.fixture(scope="module")
def files(place):
    return corpus(place / MARKER_NAME, place / "secret")


def _kinds():
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "secret").write_bytes(SECRET)
        return list(corpus(Path(folder) / MARKER_NAME, Path(folder) / "secret"))


KINDS = _kinds()


@pytest.fixture(autouse=True)
def _small_budget(settings):
    """A tighter budget keeps the opcode-flood kind quick; every other kind is refused either way."""
    settings.HYBRIDREC_MAX_BUNDLE_BYTES = 8 * 1024**2


def stored_files(settings):
    folder = settings.MEDIA_ROOT / "bundles"
    return {f"bundles/{p.name}" for p in folder.iterdir() if p.is_file()} if folder.is_dir() else set()


def assert_files_match_rows(settings):
    rows = set(ModelVersion.objects.exclude(file="").values_list("file", flat=True))
    assert stored_files(settings) == rows, "stored bundle files and registry rows differ"
    staged = list((settings.MEDIA_ROOT / "bundles").glob(".staging-*"))
    assert staged == [], "a staging file or folder was left behind"


def through_api(superuser, name, data, tmp_path):
    client = APIClient()
    # A real token: the upload door authenticates from the headers, before DRF runs.
    token, _ = Token.objects.get_or_create(user=superuser)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    response = client.post("/api/v1/models/", {"file": SimpleUploadedFile(name, data)}, format="multipart")
    assert 400 <= response.status_code < 500, response.content[:300]
    body = response.json()
    assert body["detail"] and body["code"] in BUNDLE_ERROR_CODES | {"registry_error"}
    assert ModelVersion.objects.count() == 0
    return body["detail"]


def through_admin(superuser, name, data, tmp_path, client):
    client.force_login(superuser)
    upload = SimpleUploadedFile(name, data)
    response = client.post(reverse("admin:modelstore_modelversion_add"), {"file": upload, "kind": ""})
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert errors, "the admin accepted a hostile file"
    assert ModelVersion.objects.count() == 0
    return " ".join(str(e) for e in errors.values())


def through_import(superuser, name, data, tmp_path):
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(CommandError) as refused:
        call_command("import_bundle", str(path), stdout=StringIO(), stderr=StringIO())
    assert ModelVersion.objects.count() == 0
    return str(refused.value)


def through_bundle_models(superuser, name, data, tmp_path):
    folder = factories.write_cf_folder(tmp_path / "artifacts" / "run" / "cf", recs_format="pkl")
    (folder / "customer_mapping.pkl").write_bytes(data)
    with pytest.raises(CommandError) as refused:
        call_command("bundle_models", "--cf-artifacts", str(folder), stdout=StringIO(), stderr=StringIO())
    assert ModelVersion.objects.count() == 0
    return str(refused.value)


def through_verify(superuser, name, data, tmp_path, settings):
    written = write_bundle(tmp_path / "good.joblib", kind="cf", arrays=factories.cf_array_set())
    version = services.version_register(path=written.path).version
    stored = settings.MEDIA_ROOT / version.file.name
    stored.chmod(stored.stat().st_mode | stat.S_IWUSR)
    stored.write_bytes(data)

    tasks.verify_bundle(version.pk)

    version.refresh_from_db()
    assert version.status == ModelVersion.Status.FAILED and version.error
    return version.error


@pytest.mark.parametrize("door", DOORS)
@pytest.mark.parametrize("kind", KINDS)
def test_a_hostile_file_is_refused_with_nothing_run_or_left_behind(
    kind, door, files, place, tmp_path, superuser, settings, client
):
    name, data = files[kind]
    extra = {"client": client} if door == "admin" else {"settings": settings} if door == "verify" else {}
    through = {
        "api": through_api,
        "admin": through_admin,
        "import_bundle": through_import,
        "bundle_models": through_bundle_models,
        "verify": through_verify,
    }[door]

    reason = through(superuser, name, data, tmp_path, **extra)

    assert reason and "\n" not in reason.strip()
    assert not (place / MARKER_NAME).exists(), f"{kind} through {door}: something ran"
    assert (place / "secret").read_bytes() == SECRET
    assert SECRET.decode() not in reason
    assert_files_match_rows(settings)


def test_the_corpus_has_at_least_forty_kinds():
    assert len(KINDS) >= 40


def test_the_memmap_payload_is_real(place):
    """Unpickled without the allow-list, the file is a consistent bundle whose factors are the secret."""
    document = pickle.loads(secret_as_factors(place / "secret"))

    factors = document["arrays"]["user_factors"]
    assert factors.tobytes() == SECRET
    assert verify_arrays("cf", document["arrays"])["n_users"] == 60
    assert content_hash(document["arrays"]) == document["metadata"]["content_sha256"]
