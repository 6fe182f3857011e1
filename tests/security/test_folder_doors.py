"""Hostile artifact folders through every door that builds from one (bundle_models, the Build page).

Each must end in a clean refusal within seconds: a ``CommandError`` of one line, a form error,
or a row (and a training run) marked failed with the reason; no bundle file stored, nothing
outside the folder opened.
"""

import time

import pytest
from django.urls import reverse

from modelstore.models import ModelVersion

from . import reader_doors
from .hostile_readers import ARTIFACT_KINDS, LINK_KINDS, hostile_folder
from .reader_doors import queued_at_once, refused_command, small_budget, stored_bundles  # noqa: F401 - fixtures

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("small_budget", "queued_at_once")]
BUILD = reverse("admin:modelstore_modelversion_build")


def _folder(kind, tmp_path):
    # "outside" lies under the artifact roots: what refuses a link is the folder's own edge.
    return hostile_folder(kind, tmp_path / "artifacts" / "run" / kind, tmp_path / "artifacts" / "outside")


@pytest.mark.parametrize("kind", sorted(ARTIFACT_KINDS))
def test_bundle_models_refuses_a_hostile_artifacts_folder(kind, tmp_path, settings):
    folder_kind, folder = _folder(kind, tmp_path)

    reason = refused_command("bundle_models", f"--{folder_kind}-artifacts", str(folder))

    assert ModelVersion.objects.count() == 0 and stored_bundles(settings) == []
    if kind in LINK_KINDS:
        assert "links outside the folder" in reason
    elif kind != "npy_claims_more_than_held":  # numpy itself refuses a header the file cannot hold
        assert "budget" in reason or "more than" in reason, reason


@pytest.mark.parametrize("kind", sorted(ARTIFACT_KINDS))
def test_the_build_page_refuses_a_hostile_artifacts_folder(kind, tmp_path, settings, client, superuser):
    folder_kind, folder = _folder(kind, tmp_path)
    client.force_login(superuser)

    started = time.perf_counter()
    response = client.post(
        BUILD, {f"{folder_kind}_path": str(folder.relative_to(tmp_path / "artifacts")), "compression": "none"}
    )
    seconds = time.perf_counter() - started

    assert seconds < reader_doors.REFUSAL_SECONDS
    assert stored_bundles(settings) == []
    if kind in LINK_KINDS:
        assert response.status_code == 200
        assert "links outside the folder" in str(response.context["form"].errors)
        assert ModelVersion.objects.count() == 0
    else:
        version = ModelVersion.objects.get()
        assert version.status == ModelVersion.Status.FAILED and not version.file
        assert version.error and "\n" not in version.error


def test_a_link_made_after_the_form_checked_is_refused_by_the_build(tmp_path, settings, cf_folder):
    from modelstore import services

    outside = tmp_path / "artifacts" / "outside"
    outside.mkdir()
    (cf_folder / "item_factors.npy").rename(outside / "item_factors.npy")
    (cf_folder / "item_factors.npy").symlink_to(outside / "item_factors.npy")
    version = services.version_start_build(kind="cf")

    with pytest.raises(Exception, match="links outside the folder"):
        services.version_build(kind="cf", artifacts_path=cf_folder, version=version)

    version.refresh_from_db()
    assert version.status == ModelVersion.Status.FAILED and "links outside the folder" in version.error
