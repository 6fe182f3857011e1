"""One use case, one service: register or build, verify, maybe activate; forms only validate; lookups."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from modelstore import selectors, services
from modelstore.bundles import write_bundle
from modelstore.exceptions import AmbiguousLabel, VersionNotFound
from modelstore.forms import UploadForm
from modelstore.metrics import EvaluationResult, compare_metrics
from modelstore.models import ActivationEvent, ModelVersion
from tests import factories

pytestmark = pytest.mark.django_db


def test_register_can_verify_and_activate_in_one_call(tmp_path):
    path = write_bundle(tmp_path / "cf.joblib", kind="cf", arrays=factories.cf_array_set()).path

    registered = services.version_register(path=path, verify=services.INLINE, activate=True)

    version = ModelVersion.objects.get(pk=registered.version.pk)
    assert registered.created
    assert version.status == ModelVersion.Status.READY and version.is_active
    assert ActivationEvent.objects.filter(to_version=version).count() == 1


def test_a_broken_bundle_registered_with_activate_ends_failed_and_inactive(tmp_path, monkeypatch):
    path = write_bundle(tmp_path / "cf.joblib", kind="cf", arrays=factories.cf_array_set()).path
    from modelstore.services import verification

    def damaged(bundle):
        raise RuntimeError("the arrays changed under us")

    monkeypatch.setattr(verification, "verify_bundle", damaged)
    registered = services.version_register(path=path, verify=services.INLINE, activate=True)

    version = ModelVersion.objects.get(pk=registered.version.pk)
    assert version.status == ModelVersion.Status.FAILED and not version.is_active
    assert "RuntimeError: the arrays changed under us" in version.error


def test_known_ready_content_uploaded_with_activate_is_activated_without_a_second_verification(
    tmp_path, register, django_capture_on_commit_callbacks
):
    arrays = factories.cf_array_set()
    ready = register("cf", arrays, label="cf-first")
    path = write_bundle(tmp_path / "again.joblib", kind="cf", arrays=arrays).path

    with django_capture_on_commit_callbacks() as queued:
        registered = services.version_register(path=path, verify=services.QUEUED, activate=True)

    assert not registered.created and registered.version.pk == ready.pk
    assert queued == []  # nothing to verify again
    assert ModelVersion.objects.get(pk=ready.pk).is_active


def test_a_failed_version_uploaded_again_is_verified_again(tmp_path, django_capture_on_commit_callbacks):
    arrays = factories.cf_array_set()
    path = write_bundle(tmp_path / "cf.joblib", kind="cf", arrays=arrays).path
    first = services.version_register(path=path).version
    ModelVersion.objects.filter(pk=first.pk).update(status=ModelVersion.Status.FAILED, error="disk hiccup")

    with django_capture_on_commit_callbacks(execute=True):
        services.version_register(path=path, verify=services.QUEUED)

    assert ModelVersion.objects.get(pk=first.pk).status == ModelVersion.Status.READY


def test_the_upload_form_only_validates(tmp_path, media_files):
    written = write_bundle(tmp_path / "cf.joblib", kind="cf", arrays=factories.cf_array_set())
    upload = SimpleUploadedFile("cf.joblib", written.path.read_bytes())

    form = UploadForm({"kind": "cf", "label": " mine ", "notes": ""}, {"file": upload})

    assert form.is_valid(), form.errors
    assert form.cleaned_data["label"] == "mine"
    assert not ModelVersion.objects.exists()
    assert media_files() == []


def test_one_lookup_by_id_or_label_names_what_went_wrong(register):
    cf = register("cf", factories.cf_array_set(), label="shared")
    cb = register("cb", factories.cb_array_set(), label="shared")

    assert selectors.version_get(str(cf.pk)) == cf
    assert selectors.version_get("shared", kind="cb") == cb
    with pytest.raises(AmbiguousLabel, match="names a CF and a CB version") as ambiguous:
        selectors.version_get("shared")
    with pytest.raises(VersionNotFound, match="no model version with id or label 'nope'") as missing:
        selectors.version_get("nope")
    assert (ambiguous.value.code, missing.value.code) == ("ambiguous_label", "not_found")


def test_what_the_evaluation_stores_is_what_the_admin_compares(register):
    active = register("cf", factories.cf_array_set(seed=1), label="cf-live", activate=True)
    candidate = register("cf", factories.cf_array_set(seed=2), label="cf-next")
    for version, ndcg in ((active, 0.2), (candidate, 0.25)):
        result = EvaluationResult(
            k=10, test="test.csv", test_sha256="ab" * 32, strategies={"cf": {"ndcg": ndcg}}
        )
        services.version_record_metrics(version=version, metrics=result.to_json())

    comparison = compare_metrics(
        ModelVersion.objects.get(pk=candidate.pk), ModelVersion.objects.get(pk=active.pk)
    )

    assert comparison.comparable and comparison.k == 10
    assert [(strategy, metric, new, old) for strategy, metric, new, old, *_ in comparison.rows] == [
        ("cf", "ndcg", 0.25, 0.2)
    ]
    assert EvaluationResult.from_json({"cf": {"ndcg": 0.3}, "test": "t.csv"}) is None  # not the stored shape
