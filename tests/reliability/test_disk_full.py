"""A full disk: 507 ``insufficient_storage`` with the reason, nothing left behind, nothing held open.

MEDIA_ROOT is a real 50 MB tmpfs (mounting needs root; CI runs as root).
"""

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from modelstore import services
from modelstore.bundles import write_bundle
from modelstore.bundles.layout import cf_arrays
from modelstore.exceptions import InsufficientStorage
from modelstore.models import ModelVersion
from tests.conftest import skip_or_fail

pytestmark = pytest.mark.slow

DISK_MB = 50


@pytest.fixture
def small_disk(settings):
    """Mount a 50 MB tmpfs as MEDIA_ROOT; yield its path; unmount it afterwards."""
    root = Path(settings.MEDIA_ROOT)
    root.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_MB}m", "tmpfs", str(root)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        skip_or_fail(f"cannot mount a tmpfs (needs root): {mounted.stderr.strip()}")
    try:
        yield root
    finally:
        subprocess.run(["umount", "-l", str(root)], check=False)


def big_cf_arrays(n_users, n_factors=64):
    """Return a valid CF array set of about n_users × n_factors × 4 bytes."""
    rng = np.random.default_rng(0)
    return cf_arrays(
        user_ids=[f"C{i:07d}" for i in range(n_users)],
        item_ids=[f"I{i:03d}" for i in range(50)],
        user_factors=rng.normal(size=(n_users, n_factors)).astype(np.float32),
        item_factors=rng.normal(size=(50, n_factors)).astype(np.float32),
        recs_indptr=np.zeros(n_users + 1, dtype=np.int64),
        recs_indices=np.zeros(0, dtype=np.int32),
        recs_scores=np.zeros(0, dtype=np.float32),
    )


def held_open(root):
    """Return this process's open files and memory mappings under ``root``."""
    root = str(root)
    fds = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(root):
            fds.append(target)
    maps = [line for line in Path("/proc/self/maps").read_text().splitlines() if root in line]
    return fds + maps


def used_bytes(root):
    stats = os.statvfs(root)
    return (stats.f_blocks - stats.f_bfree) * stats.f_frsize


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("users", "where"),
    [(260_000, "while the upload streams in"), (120_000, "while the bundle is stored")],
)
def test_an_upload_that_fills_the_disk_answers_507_and_leaves_nothing(
    client_for, tmp_path, small_disk, users, where
):
    path = write_bundle(tmp_path / "big.joblib", kind="cf", arrays=big_cf_arrays(users)).path
    size_mb = path.stat().st_size / 1e6
    # Over the disk on its own, or under it but not twice over (staged copy plus stored copy).
    assert (size_mb > DISK_MB) if where.startswith("while the upload") else (DISK_MB / 2 < size_mb < DISK_MB)
    upload = SimpleUploadedFile("big.joblib", path.read_bytes())

    response = client_for("superuser").post("/api/v1/models/", {"file": upload}, format="multipart")

    assert response.status_code == 507, response.content
    body = response.json()
    assert body["code"] == "insufficient_storage"
    assert "No space left on device" in body["detail"]
    assert ModelVersion.objects.count() == 0
    assert [p for p in small_disk.rglob("*") if p.is_file()] == []
    assert held_open(small_disk) == []
    assert used_bytes(small_disk) < 1_000_000  # the space is free again


@pytest.mark.django_db
def test_a_build_that_fills_the_disk_ends_failed_and_leaves_nothing(tmp_path, small_disk):
    import joblib

    folder = tmp_path / "artifacts" / "big" / "cf"
    folder.mkdir(parents=True)
    arrays = big_cf_arrays(260_000)
    np.save(folder / "user_factors.npy", arrays["user_factors"])
    np.save(folder / "item_factors.npy", arrays["item_factors"])
    joblib.dump({str(u): i for i, u in enumerate(arrays["user_ids"])}, folder / "customer_mapping.pkl")
    joblib.dump({str(u): i for i, u in enumerate(arrays["item_ids"])}, folder / "item_mapping.pkl")
    (folder / "recommendations.csv").write_text("customer_id,item_id,score,rank\nC0000000,I000,1.0,1\n")
    version = services.version_start_build(kind="cf")

    with pytest.raises(InsufficientStorage, match="No space left on device"):
        services.version_build(kind="cf", artifacts_path=folder, version=version)

    version.refresh_from_db()
    assert version.status == "failed" and "storage is full" in version.error
    assert [p for p in small_disk.rglob("*") if p.is_file()] == []
    assert held_open(small_disk) == []
