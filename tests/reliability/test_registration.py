"""Every registration ends: a broker that can't be reached, a build that is busy or fails oddly, the sweep."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from modelstore import services
from modelstore.bundles import write_bundle
from modelstore.models import ModelVersion
from tests import factories
from tests.support.celery_worker import tasks_sent_to
from tests.support.processes import free_port

MODELS = "/api/v1/models/"


@pytest.fixture
def dead_broker():
    """Send tasks to a Redis address where nothing listens (the shared Redis is never stopped)."""
    with tasks_sent_to(f"redis://127.0.0.1:{free_port()}/15"):
        yield


def bundle_upload(tmp_path, seed=0, name="weekly.joblib"):
    from django.core.files.uploadedfile import SimpleUploadedFile

    path = write_bundle(tmp_path / name, kind="cf", arrays=factories.cf_array_set(seed=seed)).path
    return SimpleUploadedFile(name, path.read_bytes())


@pytest.mark.django_db(transaction=True)
def test_an_upload_with_the_broker_down_answers_503_and_keeps_nothing(
    client_for, tmp_path, dead_broker, media_files
):
    response = client_for("superuser").post(MODELS, {"file": bundle_upload(tmp_path)}, format="multipart")

    assert response.status_code == 503, response.content
    body = response.json()
    assert body["code"] == "broker_unavailable"
    assert "task queue cannot be reached" in body["detail"] and "Connection refused" in body["detail"]
    assert ModelVersion.objects.count() == 0
    assert media_files() == []


@pytest.mark.django_db(transaction=True)
def test_verify_and_reupload_with_the_broker_down_answer_503_and_keep_the_row(
    client_for, tmp_path, register, dead_broker
):
    version = register("cf", factories.cf_array_set(seed=0), label="cf-kept")
    ModelVersion.objects.filter(pk=version.pk).update(status="failed", error="earlier failure")
    client = client_for("superuser")

    verify = client.post(f"{MODELS}{version.pk}/verify/")
    again = client.post(MODELS, {"file": bundle_upload(tmp_path)}, format="multipart")

    for response in (verify, again):
        assert response.status_code == 503, response.content
        assert response.json()["code"] == "broker_unavailable"
    version.refresh_from_db()
    assert (version.status, version.error) == ("failed", "earlier failure")
    assert (tmp_path / "media" / version.file.name).is_file()


@pytest.mark.django_db(transaction=True)
def test_the_admin_upload_with_the_broker_down_says_why_and_keeps_nothing(
    client, superuser, tmp_path, dead_broker, media_files
):
    client.force_login(superuser)
    response = client.post(
        reverse("admin:modelstore_modelversion_add"),
        {"file": bundle_upload(tmp_path), "kind": "", "label": "", "notes": ""},
        follow=True,
    )

    assert response.status_code == 200
    text = response.content.decode()
    assert "Not uploaded: the task queue cannot be reached" in text
    assert ModelVersion.objects.count() == 0
    assert media_files() == []


@pytest.mark.django_db(transaction=True)
def test_the_admin_build_with_the_broker_down_says_why_and_keeps_no_row(
    client, superuser, cf_folder, dead_broker
):
    client.force_login(superuser)
    response = client.post(
        reverse("admin:modelstore_modelversion_build"),
        {"cf_folder": str(cf_folder.resolve()), "compression": "none", "level": 3, "notes": ""},
        follow=True,
    )

    assert "Not built: the task queue cannot be reached" in response.content.decode()
    assert ModelVersion.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_verifying_a_version_that_is_being_built_is_refused_with_409(client_for):
    building = services.version_start_build(kind="cf")

    response = client_for("superuser").post(f"{MODELS}{building.pk}/verify/")

    assert response.status_code == 409, response.content
    assert response.json()["code"] == "version_busy"
    building.refresh_from_db()
    assert (building.status, building.error) == ("building", "")


@pytest.mark.django_db
@pytest.mark.parametrize("kind", ["cf", "cb"])
def test_a_build_whose_conversion_fails_ends_failed_with_the_reason(tmp_path, kind):
    if kind == "cf":  # a rank that is not a number: numpy's ValueError
        folder = factories.write_cf_folder(tmp_path / "artifacts" / "bad" / "cf", recs_format="csv")
        table, row, damage = folder / "recommendations.csv", 1, lambda line: line.rsplit(",", 1)[0] + ",first"
        cause = "'first'"
    else:  # an items table with more fields than its header: pandas' ParserError
        folder = factories.write_cb_folder(tmp_path / "artifacts" / "bad" / "cb")
        table, row, damage = folder / "items.csv", 2, lambda line: line + ",extra,fields"
        cause = "fields"
    lines = table.read_text().splitlines()
    lines[row] = damage(lines[row])
    table.write_text("\n".join(lines) + "\n")
    version = services.version_start_build(kind=kind)

    with pytest.raises(Exception):  # noqa: B017 - any error; what matters is the row
        services.version_build(kind=kind, artifacts_path=folder, version=version)

    version.refresh_from_db()
    assert version.status == "failed"
    assert "convert" in version.error and cause in version.error  # the reason, in the user's terms


@pytest.mark.django_db
def test_the_sweep_verifies_versions_stuck_pending_or_verifying(register, settings):
    stuck = [register("cf", factories.cf_array_set(seed=seed), label=f"cf-{seed}") for seed in (0, 1)]
    fresh = register("cf", factories.cf_array_set(seed=2), label="cf-fresh")
    long_ago = timezone.now() - timedelta(seconds=settings.HYBRIDREC_STUCK_VERIFY_SECONDS + 5)
    ModelVersion.objects.filter(pk=stuck[0].pk).update(status="pending", status_changed_at=long_ago)
    ModelVersion.objects.filter(pk=stuck[1].pk).update(status="verifying", status_changed_at=long_ago)
    ModelVersion.objects.filter(pk=fresh.pk).update(status="verifying", status_changed_at=timezone.now())

    swept = services.version_sweep_stuck()

    assert sorted(swept.requeued) == sorted(v.pk for v in stuck)
    statuses = dict(ModelVersion.objects.values_list("label", "status"))
    assert statuses == {"cf-0": "ready", "cf-1": "ready", "cf-fresh": "verifying"}  # verified in-process


@pytest.mark.django_db
def test_the_sweep_fails_builds_older_than_the_build_limit(settings):
    old = services.version_start_build(kind="cf")
    young = services.version_start_build(kind="cb")
    long_ago = timezone.now() - timedelta(seconds=settings.HYBRIDREC_STUCK_BUILD_SECONDS + 5)
    ModelVersion.objects.filter(pk=old.pk).update(status_changed_at=long_ago)

    swept = services.version_sweep_stuck()

    assert swept.failed == [old.pk]
    old.refresh_from_db()
    young.refresh_from_db()
    assert old.status == "failed" and "did not finish within 3 h" in old.error
    assert young.status == "building"


@pytest.mark.django_db
def test_a_late_activation_does_not_undo_a_newer_one(register):
    from modelstore import tasks

    late = register("cf", factories.cf_array_set(seed=0), label="cf-late")
    asked_at = (timezone.now() - timedelta(minutes=5)).isoformat()
    newer = register("cf", factories.cf_array_set(seed=1), label="cf-newer", activate=True)

    tasks.verify_bundle(late.pk, activate=True, requested_at=asked_at)  # a lost worker's message, back

    newer.refresh_from_db()
    late.refresh_from_db()
    assert newer.is_active and not late.is_active and late.status == "ready"
