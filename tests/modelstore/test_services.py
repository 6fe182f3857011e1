"""Registry rules: register, verify, activate, roll back, delete."""

import pytest
from django.db import IntegrityError, transaction

from modelstore import selectors, services
from modelstore.bundles import UnsafeBundle, write_bundle
from modelstore.exceptions import IncompatibleBundle, NothingToRollBack, VersionIsActive, VersionNotReady
from modelstore.models import ActivationEvent, ModelVersion
from tests import factories

pytestmark = pytest.mark.django_db


def test_register_stores_a_content_addressed_file_and_records_counts(tmp_path, settings):
    path = factories.write_seed_bundle(tmp_path / "seed.joblib")

    result = services.version_register(path=path, notes="from the old pipeline")

    version = result.version
    assert result.created
    assert version.status == ModelVersion.Status.PENDING
    assert version.file.name == f"bundles/{version.sha256}.joblib"
    assert (settings.MEDIA_ROOT / version.file.name).is_file()
    assert version.uploaded_sha256 != version.sha256  # converted from the seed layout
    assert version.source_layout == "seed-bundle"
    assert (version.n_users, version.n_items, version.n_factors) == (60, 25, 6)
    assert version.numpy_version and version.joblib_version
    assert version.size_bytes == (settings.MEDIA_ROOT / version.file.name).stat().st_size


def test_registering_the_same_content_twice_returns_the_same_version(tmp_path):
    parts = factories.cf_parts()
    first = services.version_register(path=factories.write_seed_bundle(tmp_path / "a.joblib", parts))
    second = services.version_register(
        path=factories.write_seed_bundle(tmp_path / "b.joblib.gz", parts, compress=("gzip", 3))
    )

    assert not second.created
    assert second.version.pk == first.version.pk
    assert ModelVersion.objects.count() == 1


def test_a_native_bundle_is_stored_as_uploaded(tmp_path):
    written = write_bundle(tmp_path / "cf.joblib", kind="cf", arrays=factories.cf_array_set())

    version = services.version_register(path=written.path).version

    assert version.sha256 == version.uploaded_sha256 == written.sha256
    assert version.source_layout == "native"


def test_register_refuses_the_wrong_kind(tmp_path):
    path = factories.write_seed_bundle(tmp_path / "seed.joblib")
    with pytest.raises(IncompatibleBundle, match="holds a cf bundle, not cb"):
        services.version_register(path=path, kind="cb")


def test_a_refused_file_leaves_no_file_and_no_row(tmp_path, media_files):
    path = tmp_path / "evil.joblib"
    import joblib

    joblib.dump({"recs_df": factories.Payload(tmp_path / "pwned")}, path)
    with pytest.raises(UnsafeBundle):
        services.version_register(path=path)
    assert ModelVersion.objects.count() == 0
    assert media_files() == []
    assert not (tmp_path / "pwned").exists()


def test_verify_marks_ready_and_a_changed_file_failed(register, settings):
    version = register("cf", factories.cf_array_set())
    assert version.status == ModelVersion.Status.READY and version.verified_at

    stored = settings.MEDIA_ROOT / version.file.name
    data = bytearray(stored.read_bytes())
    data[-5] ^= 0xFF
    stored.chmod(0o644)  # stored bundles are read-only
    stored.write_bytes(bytes(data))
    version = services.version_verify(version=version)

    assert version.status == ModelVersion.Status.FAILED
    assert "changed after it was registered" in version.error


def test_only_a_ready_version_can_be_activated(tmp_path):
    version = services.version_register(path=factories.write_seed_bundle(tmp_path / "s.joblib")).version
    with pytest.raises(VersionNotReady, match="pending"):
        services.version_activate(version=version)
    assert not ModelVersion.objects.filter(is_active=True).exists()


def test_activation_switches_the_active_version_and_leaves_an_audit_row(register, django_user_model):
    admin = django_user_model.objects.create_user("ops")
    first = register("cf", factories.cf_array_set(seed=1), activate=True)
    second = register("cf", factories.cf_array_set(seed=2))
    cb = register("cb", factories.cb_array_set(), activate=True)

    event = services.version_activate(version=second, user=admin)

    first.refresh_from_db()
    second.refresh_from_db()
    assert second.is_active and not first.is_active
    assert second.activated_by == admin and second.activated_at
    assert (event.from_version, event.to_version, event.user) == (first, second, admin)
    assert selectors.active_version("cb") == cb  # the other kind is untouched
    assert selectors.active_versions_signature() == {
        "cf": (second.pk, second.sha256),
        "cb": (cb.pk, cb.sha256),
    }


def test_the_database_allows_one_active_version_per_kind(register):
    register("cf", factories.cf_array_set(seed=1), activate=True)
    second = register("cf", factories.cf_array_set(seed=2))
    with pytest.raises(IntegrityError), transaction.atomic():
        ModelVersion.objects.filter(pk=second.pk).update(is_active=True)


def test_rollback_goes_back_through_the_activation_history(register):
    a = register("cf", factories.cf_array_set(seed=1), activate=True)
    b = register("cf", factories.cf_array_set(seed=2), activate=True)
    c = register("cf", factories.cf_array_set(seed=3), activate=True)

    assert services.version_rollback(kind="cf").to_version == b
    assert services.version_rollback(kind="cf").to_version == a
    with pytest.raises(NothingToRollBack):
        services.version_rollback(kind="cf")
    assert selectors.active_version("cf") == a
    assert ActivationEvent.objects.filter(action="rollback").count() == 2
    assert c.pk  # c stays registered


def test_rollback_with_nothing_before_is_refused(register):
    register("cf", factories.cf_array_set(), activate=True)
    with pytest.raises(NothingToRollBack, match="no earlier cf version"):
        services.version_rollback(kind="cf")


def test_the_active_version_cannot_be_deleted(register, settings):
    version = register("cf", factories.cf_array_set(), activate=True)
    with pytest.raises(VersionIsActive):
        services.version_delete(version=version)
    assert (settings.MEDIA_ROOT / version.file.name).is_file()


def test_delete_removes_the_file_only_when_no_other_row_uses_it(register, settings):
    keep = register("cf", factories.cf_array_set(seed=1), activate=True)
    gone = register("cf", factories.cf_array_set(seed=2))
    twin = ModelVersion.objects.create(
        kind="cb", label="shares-a-file", file=gone.file.name, sha256=gone.sha256
    )
    stored = settings.MEDIA_ROOT / gone.file.name

    services.version_delete(version=gone)
    assert stored.is_file()
    services.version_delete(version=twin)
    assert not stored.exists()
    assert (settings.MEDIA_ROOT / keep.file.name).is_file()


def test_build_from_artifact_folders_matches_the_input(cf_folder, cb_folder):
    parts = factories.cf_parts()
    cf = services.version_build(kind="cf", artifacts_path=cf_folder).version
    cb = services.version_build(kind="cb", artifacts_path=cb_folder).version

    assert (cf.n_users, cf.n_items, cf.n_recommendations) == (60, 25, len(parts["recs"]))
    assert cf.source_layout == "cf-artifacts" and cb.n_items == 25
    assert services.version_verify(version=cf).status == "ready"
    assert services.version_verify(version=cb).status == "ready"


def test_a_failed_build_is_recorded_on_its_row(tmp_path):
    folder = factories.write_cf_folder(tmp_path / "cf")
    (folder / "user_factors.npy").unlink()
    version = services.version_start_build(kind="cf")

    with pytest.raises(IncompatibleBundle):
        services.version_build(kind="cf", artifacts_path=folder, version=version)

    version.refresh_from_db()
    assert version.status == ModelVersion.Status.FAILED
    assert "user_factors.npy" in version.error


def test_verify_refuses_a_hostile_file_even_when_its_hash_matches(tmp_path, settings):
    """A row pointing at a hostile file (say, planted in storage) fails without running it."""
    from modelstore.bundles import file_sha256
    from tests.modelstore.test_bundles import _hostile_files

    marker = tmp_path / "pwned"
    for kind, path in _hostile_files(tmp_path, marker).items():
        name = f"bundles/hostile-{path.name}"
        stored = settings.MEDIA_ROOT / name
        stored.parent.mkdir(parents=True, exist_ok=True)
        stored.write_bytes(path.read_bytes())
        version = ModelVersion.objects.create(kind="cf", label=kind, file=name, sha256=file_sha256(stored))

        version = services.version_verify(version=version)

        assert version.status == ModelVersion.Status.FAILED, kind
        assert "not on the allow-list" in version.error and "\n" not in version.error
        assert not marker.exists(), f"{kind}: the payload ran"
