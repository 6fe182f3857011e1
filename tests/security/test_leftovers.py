"""A refused upload leaves no staging file, even after a worker was killed in the middle of one."""

import os

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from modelstore import storage
from modelstore.models import ModelVersion

pytestmark = pytest.mark.django_db


def test_a_worker_killed_mid_upload_leaves_nothing_once_the_next_upload_is_refused(client_for, settings):
    child = os.fork()
    if child == 0:  # a worker killed while it holds an upload: it never reaches its finally
        storage.staging_file()
        with storage.staging_folder() as folder:
            (folder / "upload.joblib").write_bytes(b"half an upload")
            os._exit(0)
    os.waitpid(child, 0)
    bundles = settings.MEDIA_ROOT / "bundles"
    assert len(list(bundles.glob(".staging-*"))) == 2

    response = client_for("superuser").post(
        "/api/v1/models/",
        {"file": SimpleUploadedFile("x.joblib", b"a,b\n1,2\n")},
        format="multipart",
    )

    assert response.status_code == 400
    assert list(bundles.glob(".staging-*")) == []
    assert ModelVersion.objects.count() == 0


def test_a_live_upload_of_another_process_is_left_alone(client_for, settings, tmp_path):
    bundles = settings.MEDIA_ROOT / "bundles"
    bundles.mkdir(parents=True, exist_ok=True)
    alive = bundles / f"{storage._staging_prefix().rsplit('-', 2)[0]}-1-upload.joblib.tmp"  # pid 1 runs
    alive.write_bytes(b"in progress")

    client_for("superuser").post(
        "/api/v1/models/", {"file": SimpleUploadedFile("x.joblib", b"a,b\n1,2\n")}, format="multipart"
    )

    assert alive.exists()
