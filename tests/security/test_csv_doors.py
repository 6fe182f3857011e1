"""Hostile transactions files through the training page and ``train_models``.

Each must end in a clean refusal within seconds: a ``CommandError`` of one line, a form error,
or a row (and a training run) marked failed with the reason; no bundle file stored, nothing
outside the folder opened.
"""

import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from modelstore.models import ModelVersion
from recommendations.training.models import TrainingRun

from . import reader_doors
from .hostile_readers import CSV_HEADER_KINDS, CSV_KINDS, hostile_csv
from .reader_doors import queued_at_once, refused_command, small_budget, stored_bundles  # noqa: F401 - fixtures

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("small_budget", "queued_at_once")]
TRAIN = reverse("admin:recommendations_train")


@pytest.fixture(scope="module")
def csv_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("csv")
    return {kind: hostile_csv(kind, folder / kind) for kind in CSV_KINDS}


@pytest.mark.parametrize("kind", sorted(CSV_KINDS))
def test_train_models_refuses_a_hostile_transactions_file(kind, csv_files, tmp_path):
    reason = refused_command(
        "train_models", "--interactions", str(csv_files[kind]), "--out", str(tmp_path / "run")
    )

    assert not (tmp_path / "run" / "cf").exists()
    assert "cannot read it as CSV" in reason or "more than" in reason or "budget" in reason, reason


@pytest.mark.parametrize("kind", sorted(CSV_KINDS))
def test_the_training_page_refuses_a_hostile_transactions_file(kind, csv_files, client, superuser, settings):
    client.force_login(superuser)
    path = csv_files[kind]
    data = {"data_format": "generic", "factors": "8", "iterations": "2", "regularization": "1", "alpha": "2"}
    data["interactions"] = SimpleUploadedFile(path.name, path.read_bytes())

    started = time.perf_counter()
    response = client.post(TRAIN, data)
    seconds = time.perf_counter() - started

    assert seconds < reader_doors.REFUSAL_SECONDS, f"refused after {seconds:.1f} s"
    assert stored_bundles(settings) == []
    uploads = settings.MEDIA_ROOT / "training"
    assert not uploads.exists() or not [p for p in uploads.rglob("*") if p.is_file()]
    if kind in CSV_HEADER_KINDS:
        assert response.status_code == 200
        errors = " ".join(response.context["form"].errors["interactions"])
        assert "columns" in errors or "line of more than" in errors, errors
        assert ModelVersion.objects.count() == 0
    else:
        assert response.status_code == 302
        run = TrainingRun.objects.get()
        assert run.status == TrainingRun.Status.FAILED and run.error.startswith("Training failed: ")
        for version in ModelVersion.objects.all():
            assert version.status == ModelVersion.Status.FAILED and version.error == run.error
