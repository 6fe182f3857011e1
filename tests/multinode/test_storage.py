"""Bundles and training uploads in object storage (moto's S3 on loopback), and the node cache."""

import hashlib
import os
import stat
import threading
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile

from modelstore import node_cache, services
from modelstore.bundles import CorruptBundle
from modelstore.models import ModelVersion
from recommendations.serving import reset_cache
from tests import factories

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.multinode,
    pytest.mark.usefixtures("fresh_model_cache"),
]

RECS = "/api/v1/recommendations/{}/"
MODELS = "/api/v1/models/"


def cached(settings):
    return sorted(path.name for path in settings.HYBRIDREC_BUNDLE_CACHE_DIR.glob("*.joblib"))


def test_a_registered_bundle_lives_in_the_bucket_and_each_node_fetches_it_once(
    s3_storage, settings, register, client_for
):
    before = node_cache.downloads
    version = register("cf", factories.cf_array_set(seed=0), activate=True)

    assert s3_storage.keys("bundles/") == [f"bundles/{version.sha256}.joblib"]
    assert not (settings.MEDIA_ROOT / "bundles" / f"{version.sha256}.joblib").exists()
    api = client_for("user")
    for _ in range(3):
        response = api.get(RECS.format("C0001"), {"k": 5})
        assert response.status_code == 200, response.content
        assert response.json()["model"]["cf"]["sha256"] == version.sha256
    reset_cache()  # a restarted process finds the file in the node cache
    assert api.get(RECS.format("C0001"), {"k": 5}).status_code == 200

    assert node_cache.downloads - before == 1
    path = settings.HYBRIDREC_BUNDLE_CACHE_DIR / f"{version.sha256}.joblib"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == version.sha256
    assert not path.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)


def test_processes_fetching_the_same_bundle_together_download_it_once(s3_storage, settings, register):
    version = register("cf", factories.cf_array_set(seed=0))
    for path in settings.HYBRIDREC_BUNDLE_CACHE_DIR.glob("*.joblib"):
        path.unlink()  # as on a node that has never served it
    before = node_cache.downloads
    paths = []
    threads = [
        threading.Thread(target=lambda: paths.append(node_cache.fetch(version.file.name, version.sha256)))
        for _ in range(6)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(paths) == 6 and len(set(paths)) == 1
    assert node_cache.downloads - before == 1
    assert [p.name for p in settings.HYBRIDREC_BUNDLE_CACHE_DIR.iterdir() if p.suffix == ".tmp"] == []


def test_a_stored_file_that_does_not_match_its_hash_is_refused_and_not_kept(s3_storage, settings, register):
    version = register("cf", factories.cf_array_set(seed=0))
    (settings.HYBRIDREC_BUNDLE_CACHE_DIR / f"{version.sha256}.joblib").unlink()
    s3_storage.client().put_object(Bucket=s3_storage.name, Key=version.file.name, Body=b"not the bundle")

    with pytest.raises(CorruptBundle, match="registered sha256"):
        node_cache.fetch(version.file.name, version.sha256)
    # Nothing of the refused download is kept: no bundle, no temporary file (the verification
    # stamps of earlier, good files live in their own folder).
    assert [p for p in settings.HYBRIDREC_BUNDLE_CACHE_DIR.iterdir() if p.is_file()] == [
        settings.HYBRIDREC_BUNDLE_CACHE_DIR / f".{version.sha256}.lock"
    ]


def test_the_cache_limit_evicts_unused_versions_never_the_active_last_good_or_held_one(
    s3_storage, settings, register
):
    old = register("cf", factories.cf_array_set(seed=0), activate=True)
    held = register("cf", factories.cf_array_set(seed=1))
    last_good = register("cf", factories.cf_array_set(seed=2), activate=True)
    active = register("cf", factories.cf_array_set(seed=3), activate=True)
    unused = register("cf", factories.cf_array_set(seed=4))
    assert len(cached(settings)) == 5
    handle = node_cache.hold(node_cache.cached_file(held.sha256))
    try:
        settings.HYBRIDREC_BUNDLE_CACHE_BYTES = 1  # over the limit whatever it holds
        removed = node_cache.evict()
    finally:
        os.close(handle)

    assert sorted(removed) == sorted([old.sha256, unused.sha256])
    assert cached(settings) == sorted(f"{v.sha256}.joblib" for v in (held, last_good, active))


def test_with_s3_unreachable_an_uncached_version_is_refused_and_the_active_one_keeps_serving(
    s3_storage, settings, register, client_for
):
    served = register("cf", factories.cf_array_set(seed=0), activate=True)
    waiting = register("cf", factories.cf_array_set(seed=1))
    (settings.HYBRIDREC_BUNDLE_CACHE_DIR / f"{waiting.sha256}.joblib").unlink()  # never fetched here
    api, admin = client_for("user"), client_for("superuser")
    assert api.get(RECS.format("C0001")).status_code == 200

    s3_storage.proxy.cut()
    refused = admin.post(f"{MODELS}{waiting.pk}/activate/")
    answer = api.get(RECS.format("C0001"))

    assert refused.status_code == 503, refused.content
    assert refused.json()["code"] == "storage_unavailable"
    assert "could not be fetched from storage" in refused.json()["detail"]
    assert ModelVersion.objects.get(is_active=True, kind="cf").pk == served.pk
    assert answer.status_code == 200
    assert answer.json()["model"]["cf"]["sha256"] == served.sha256

    s3_storage.proxy.restore()
    activated = admin.post(f"{MODELS}{waiting.pk}/activate/")
    assert activated.status_code == 200, activated.content
    assert api.get(RECS.format("C0001")).json()["model"]["cf"]["sha256"] == waiting.sha256


def test_training_uploads_are_stored_in_the_bucket_and_removed_after_the_run(s3_storage, settings):
    from recommendations.training import tasks

    queued = []
    settings.CELERY_TASK_ALWAYS_EAGER = False
    original = services.task_queue
    services.task_queue = lambda task, *args, **kwargs: queued.append((args, kwargs))
    try:
        interactions = SimpleUploadedFile("orders.csv", b"customer_id,item_id\nC1,I1\nC2,I2\n")
        tasks.training_queue(interactions_file=interactions)
    finally:
        services.task_queue = original

    (_, name), _ = queued[0]
    assert name.startswith("training/") and name.endswith("/interactions.csv")
    assert default_storage.open(name).read() == b"customer_id,item_id\nC1,I1\nC2,I2\n"
    assert not (settings.MEDIA_ROOT / "training").exists()
    with tasks._local_uploads(name, None) as (local, items):
        assert Path(local).read_bytes().startswith(b"customer_id")
        assert items is None
    tasks._remove_uploads(name)
    assert s3_storage.keys("training/") == []


def test_activating_a_version_whose_stored_file_changed_is_refused_with_the_reason(
    s3_storage, settings, register, client_for
):
    served = register("cf", factories.cf_array_set(seed=0), activate=True)
    changed = register("cf", factories.cf_array_set(seed=1))
    (settings.HYBRIDREC_BUNDLE_CACHE_DIR / f"{changed.sha256}.joblib").unlink()
    s3_storage.client().put_object(Bucket=s3_storage.name, Key=changed.file.name, Body=b"other bytes")

    refused = client_for("superuser").post(f"{MODELS}{changed.pk}/activate/")

    assert refused.status_code == 400, refused.content
    assert "does not have the registered sha256" in refused.json()["detail"]
    assert ModelVersion.objects.get(is_active=True, kind="cf").pk == served.pk
