"""The process model cache: first loads, lazy CB, hot swap, refused files, the artifacts fallback."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import DatabaseError

from modelstore import selectors, services
from modelstore.bundles import CorruptBundle, file_sha256, write_bundle
from modelstore.bundles.stamps import ensure_verified
from modelstore.models import ActivationEvent
from recommendations.serving import BUNDLE, FILES, ModelUnavailable, get_cache, reset_cache
from recommendations.serving import cache as cache_module
from tests import factories

pytestmark = pytest.mark.django_db


def media_path(settings, version):
    return Path(settings.MEDIA_ROOT) / version.file.name


def corrupt(path):
    """Change bytes in the middle of a file, keeping its size (what a bad copy or an edit does)."""
    data = bytearray(path.read_bytes())
    path.chmod(0o644)  # stored bundles are read-only
    middle = len(data) // 2
    data[middle : middle + 8] = bytes(255 - b for b in data[middle : middle + 8])
    path.write_bytes(bytes(data))


def notice_now(cache):
    """Make the next request check the registry instead of waiting for the check interval."""
    cache._next_check = 0.0


@pytest.fixture
def count_loads(monkeypatch):
    """Count the loads the cache performs, per kind."""
    calls = []
    real_load = cache_module.load

    def counting_load(target, **kwargs):
        calls.append(target)
        return real_load(target, **kwargs)

    monkeypatch.setattr(cache_module, "load", counting_load)
    return calls


def test_the_active_cf_version_is_loaded_memory_mapped(cf_version):
    model = get_cache().get("cf")

    assert model.target.source == BUNDLE
    assert model.target.version_id == cf_version.pk
    assert model.reference() == {
        "id": cf_version.pk,
        "label": "cf-one",
        "sha256": cf_version.sha256,
        "source": "bundle",
    }
    assert model.memory_mapped
    assert model.engine.n_users == 60


def test_cb_is_not_loaded_before_its_first_use(cf_version, cb_version, count_loads):
    cache = get_cache()
    cache.get("cf")

    assert cache.peek("cb") is None
    assert cache.health()["cb_loaded"] is False
    assert [target.kind for target in count_loads] == ["cf"]

    assert cache.get("cb").target.version_id == cb_version.pk
    assert cache.health()["cb_loaded"] is True


@pytest.mark.django_db(transaction=True)
def test_many_threads_asking_for_cb_at_once_cause_one_load(
    cf_version, cb_version, count_loads, run_in_threads
):
    cache = get_cache()
    cache.get("cf")

    models = run_in_threads(lambda: cache.get("cb"), 8)

    assert len({id(model) for model in models}) == 1
    assert [target.kind for target in count_loads] == ["cf", "cb"]


def test_cb_loads_in_the_background_after_cf_when_asked(settings, cf_version, cb_version):
    settings.HYBRIDREC_CB_PRELOAD = "background"
    cache = get_cache()

    cache.get("cf")
    assert cache.wait(10)

    assert cache.peek("cb").target.version_id == cb_version.pk


def test_another_active_version_is_swapped_in_while_the_old_one_answers(cf_version, cf_version_two):
    cache = get_cache()
    old = cache.get("cf")
    services.version_activate(version=cf_version_two)

    # Within the check interval nothing is asked of the registry: the old model answers.
    assert cache.get("cf") is old
    notice_now(cache)
    during = cache.get("cf")  # notices, starts the load in the background, answers at once
    assert cache.wait(10)

    assert during.target.version_id in (cf_version.pk, cf_version_two.pk)
    assert cache.get("cf").target.version_id == cf_version_two.pk
    health = cache.health()["models"]["cf"]
    assert health["id"] == cf_version_two.pk
    assert health["serving_active"] is True
    assert health["last_error"] is None


def test_the_registry_is_asked_at_most_once_per_check_interval(
    settings, cf_version, django_assert_num_queries
):
    settings.HYBRIDREC_VERSION_CHECK_SECONDS = 60
    cache = get_cache()
    cache.get("cf")

    with django_assert_num_queries(0):
        for _ in range(50):
            cache.get("cf")
    notice_now(cache)
    with django_assert_num_queries(2):  # the active versions, then the running experiments
        cache.get("cf")


def test_a_version_altered_after_verification_is_refused_withdrawn_and_the_old_one_keeps_answering(
    settings, cf_version, cf_version_two, count_loads
):
    cache = get_cache()
    cache.get("cf")
    corrupt(media_path(settings, cf_version_two))
    services.version_activate(version=cf_version_two)

    notice_now(cache)
    cache.get("cf")

    assert cache.get("cf").target.version_id == cf_version.pk
    health = cache.health()
    assert health["status"] == "degraded"
    assert any("cf-two" in reason and "changed on disk" in reason for reason in health["reasons"])
    error = health["models"]["cf"]["last_error"]
    assert error["id"] == cf_version_two.pk
    assert "changed on disk" in error["message"]
    # The registry withdrew it: failed, and the kind rolled back by the system with the reason.
    cf_version_two.refresh_from_db()
    cf_version.refresh_from_db()
    assert (cf_version_two.status, cf_version_two.is_active) == ("failed", False)
    assert "changed on disk" in cf_version_two.error
    assert cf_version.is_active
    event = ActivationEvent.objects.first()
    assert (event.action, event.user, event.from_version, event.to_version) == (
        "quarantine",
        None,
        cf_version_two,
        cf_version,
    )
    assert "changed on disk" in event.reason

    # The withdrawn version is not tried again.
    loads = len(count_loads)
    for _ in range(3):
        notice_now(cache)
        cache.get("cf")
    assert len(count_loads) == loads
    assert cache.health()["models"]["cf"]["serving_active"] is True


def test_activating_another_version_after_a_refused_one_swaps_at_once(
    register, settings, cf_version, cf_version_two
):
    cache = get_cache()
    cache.get("cf")
    corrupt(media_path(settings, cf_version_two))
    services.version_activate(version=cf_version_two)
    notice_now(cache)
    cache.get("cf")
    cache.wait(10)

    third = register("cf", factories.cf_array_set(seed=2), activate=True, label="cf-three")
    notice_now(cache)
    cache.get("cf")
    assert cache.wait(10)

    assert cache.get("cf").target.version_id == third.pk
    assert cache.health()["models"]["cf"]["last_error"] is None


def test_a_missing_file_at_start_gives_503_reasons_not_a_crash(settings, cf_version):
    media_path(settings, cf_version).unlink()

    with pytest.raises(ModelUnavailable, match="cf-one could not be loaded"):
        get_cache().get("cf")
    health = get_cache().health()
    assert health["status"] == "unavailable"
    assert health["models"]["cf"]["unavailable"]
    assert health["models"]["cf"]["last_error"]["id"] == cf_version.pk


def test_a_file_verified_on_this_machine_is_trusted_until_it_changes(settings, cf_version):
    path = media_path(settings, cf_version)

    # Verification hashed the whole file and left a stamp: the first load does not read it again.
    assert get_cache().get("cf").hashed is False
    reset_cache()  # a restart: the stamp in the bundle cache folder still vouches for the file
    assert get_cache().get("cf").hashed is False

    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    reset_cache()
    assert get_cache().get("cf").hashed is True  # touched: hashed again, same content, accepted


def test_a_stamped_file_whose_content_changed_is_refused(tmp_path):
    path = tmp_path / "bundle.joblib"
    written = write_bundle(path, kind="cb", arrays=factories.cb_array_set())
    stamps = tmp_path / "stamps"

    assert ensure_verified(path, written.sha256, stamp_dir=stamps) is True
    assert ensure_verified(path, written.sha256, stamp_dir=stamps) is False
    corrupt(path)

    with pytest.raises(CorruptBundle, match="changed on disk"):
        ensure_verified(path, written.sha256, stamp_dir=stamps)
    with pytest.raises(CorruptBundle):
        ensure_verified(path, written.sha256, stamp_dir=stamps)  # no stamp left behind


def test_processes_loading_the_same_new_file_at_once_hash_it_once(tmp_path, run_in_threads):
    path = tmp_path / "bundle.joblib"
    written = write_bundle(path, kind="cb", arrays=factories.cb_array_set())

    hashed = run_in_threads(lambda: ensure_verified(path, written.sha256, stamp_dir=tmp_path / "stamps"), 4)

    assert sorted(hashed) == [False, False, False, True]


def test_a_file_replaced_with_the_same_size_and_mtime_is_hashed_again(tmp_path):
    path = tmp_path / "bundle.joblib"
    written = write_bundle(path, kind="cb", arrays=factories.cb_array_set())
    stamps = tmp_path / "stamps"
    ensure_verified(path, written.sha256, stamp_dir=stamps)
    stat = path.stat()

    other = write_bundle(tmp_path / "other.joblib", kind="cb", arrays=factories.cb_array_set(seed=9))
    assert other.size_bytes == stat.st_size
    os.replace(other.path, path)  # a new inode under the old name
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))

    with pytest.raises(CorruptBundle):
        ensure_verified(path, written.sha256, stamp_dir=stamps)


def test_without_an_active_version_the_artifacts_folder_is_served(settings, cf_folder):
    settings.HYBRIDREC_CF_ARTIFACTS = str(cf_folder)

    model = get_cache().get("cf")

    assert model.target.source == FILES
    assert model.reference()["id"] is None
    health = get_cache().health()
    assert health["status"] == "ok"
    assert health["models"]["cf"]["source"] == "files"
    assert model.engine.recommend("C0001", 5).item_ids.size == 5


def test_the_cb_artifacts_folder_is_served_without_an_active_cb_version(settings, cf_version, cb_folder):
    settings.HYBRIDREC_CB_ARTIFACTS = str(cb_folder)

    model = get_cache().get("cb")

    assert model.target.source == FILES
    assert model.engine.title("I003") == "PRODUCT 3"


def test_an_activated_version_replaces_the_artifacts_folder(settings, cf_folder, register):
    settings.HYBRIDREC_CF_ARTIFACTS = str(cf_folder)
    cache = get_cache()
    assert cache.get("cf").target.source == FILES

    version = register("cf", factories.cf_array_set(seed=3), activate=True)
    notice_now(cache)
    cache.get("cf")
    assert cache.wait(10)

    assert cache.get("cf").target.version_id == version.pk


def test_an_active_version_that_cannot_load_falls_back_to_the_artifacts_folder(
    settings, cf_version, cf_folder
):
    settings.HYBRIDREC_CF_ARTIFACTS = str(cf_folder)
    corrupt(media_path(settings, cf_version))

    model = get_cache().get("cf")

    assert model.target.source == FILES
    assert get_cache().health()["models"]["cf"]["last_error"]["id"] == cf_version.pk


def test_no_model_and_no_folder_is_unavailable_with_the_reason():
    with pytest.raises(
        ModelUnavailable, match="no cf version is active and HYBRIDREC_CF_ARTIFACTS is not set"
    ):
        get_cache().get("cf")
    assert get_cache().health()["status"] == "unavailable"


def test_a_registry_that_cannot_be_read_leaves_the_loaded_model_answering(monkeypatch, cf_version):
    cache = get_cache()
    model = cache.get("cf")

    def broken():
        raise DatabaseError("connection refused")

    monkeypatch.setattr(selectors, "serving_signature", broken)
    notice_now(cache)

    assert cache.get("cf") is model
    health = cache.health()
    assert "connection refused" in health["check_error"]
    assert health["status"] == "degraded"
    assert health["reasons"] == ["the registry cannot be read: the loaded versions keep serving"]


def test_reset_cache_gives_a_new_empty_cache(cf_version):
    first = get_cache()
    first.get("cf")

    reset_cache()

    assert get_cache() is not first
    assert get_cache().peek("cf") is None


def test_serving_a_bundle_does_not_import_pandas(tmp_path):
    media = tmp_path / "media-subprocess"
    written = write_bundle(media / "bundles" / "cf.joblib", kind="cf", arrays=factories.cf_array_set())
    script = f"""
import sys, django
django.setup()
import hybridrec.urls
from recommendations.serving.loading import BUNDLE, Target, load
model = load(Target("cf", BUNDLE, 1, "cf", {written.sha256!r}, "bundles/cf.joblib"), stamp_dir={str(tmp_path)!r})
assert model.engine.recommend("C0001", 5).item_ids.size == 5
heavy = sorted(name for name in ("pandas", "pyarrow", "sklearn", "implicit", "scipy") if name in sys.modules)
print(",".join(heavy))
"""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "hybridrec.settings",
        "MEDIA_ROOT": str(media),
    }
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""
    assert file_sha256(written.path) == written.sha256
