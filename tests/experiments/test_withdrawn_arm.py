"""A candidate whose file changed mid-experiment: withdrawn, named everywhere, and never promoted."""

import os
from pathlib import Path

import pytest

from modelstore import selectors
from modelstore.models import ModelVersion
from recommendations.experiments import services
from recommendations.experiments.exceptions import ArmWithdrawn
from recommendations.experiments.models import Experiment
from recommendations.serving import get_cache, reset_cache
from tests.experiments.conftest import notice_now

pytestmark = pytest.mark.django_db

RECS = "/api/v1/recommendations/{}/"
EXPERIMENTS = "/api/v1/experiments/"
HEALTH = "/api/v1/health/"
ADMIN = "/admin/experiments/experiment/"


def candidate_file(settings, version):
    path = Path(settings.MEDIA_ROOT) / version.file.name
    path.chmod(0o644)  # stored bundles are read-only
    return path


def flip_bytes(path):
    """Change 64 bytes in the middle of ``path`` in place, as a stray write would."""
    with open(path, "r+b") as handle:
        handle.seek(path.stat().st_size // 2)
        chunk = handle.read(64)
        handle.seek(-len(chunk), 1)
        handle.write(bytes(255 - b for b in chunk))


@pytest.fixture
def withdrawn(api, running, cf_version_two, settings):
    """Return the experiment after its candidate's file changed and this process noticed."""
    flip_bytes(candidate_file(settings, cf_version_two))
    assert api.get(RECS.format("C0001")).json()["experiment"] is None  # dropped before any read
    notice_now(get_cache())  # the arm is loaded again, and its content differs
    return running


def test_the_arms_version_is_withdrawn_in_the_registry(withdrawn, cf_version, cf_version_two):
    version = ModelVersion.objects.get(pk=cf_version_two.pk)

    assert version.status == ModelVersion.Status.FAILED
    assert "changed on disk" in version.error
    assert selectors.active_version("cf").pk == cf_version.pk  # the control still serves
    assert Experiment.objects.get(pk=withdrawn.pk).status == Experiment.Status.RUNNING


def test_the_experiment_api_names_the_withdrawn_arm(withdrawn, client_for):
    body = client_for("superuser").get(f"{EXPERIMENTS}{withdrawn.pk}/").json()

    assert body["withdrawn_arms"] == ["B"]
    arms = {arm["name"]: arm for arm in body["arms"]}
    assert arms["control"]["withdrawn"] is None
    assert "changed on disk" in arms["B"]["withdrawn"]


def test_health_is_degraded_and_names_the_arm_in_every_process(withdrawn, api, cf_version_two):
    for _ in range(2):  # this process, then a fresh one that only read the registry
        body = api.get(HEALTH).json()
        assert body["status"] == "degraded"
        assert body["withdrawn_arms"] == {
            "cf": {
                "experiment": withdrawn.pk,
                "arms": {"B": {"version": cf_version_two.pk, "label": "cf-two"}},
            }
        }
        assert any(
            "arm B was withdrawn" in reason and "changed on disk" in reason for reason in body["reasons"]
        )
        assert body["experiments"] == {}
        reset_cache()
        notice_now(get_cache())


def test_answers_come_from_the_control_and_name_no_experiment(withdrawn, api, cf_version):
    answers = [api.get(RECS.format(f"C{i:04d}")).json() for i in range(20)]

    assert all(a["experiment"] is None and a["model"]["cf"]["id"] == cf_version.pk for a in answers)


def test_promoting_the_withdrawn_arm_is_a_409_and_changes_nothing(
    withdrawn, client_for, cf_version, cf_version_two
):
    manager = client_for("superuser")

    refused = manager.post(
        f"{EXPERIMENTS}{withdrawn.pk}/stop/", {"promote": cf_version_two.pk}, format="json"
    )

    assert refused.status_code == 409, refused.content
    assert refused.json()["code"] == "arm_withdrawn"
    assert "cannot be promoted" in refused.json()["detail"]
    assert Experiment.objects.get(pk=withdrawn.pk).status == Experiment.Status.RUNNING
    assert selectors.active_version("cf").pk == cf_version.pk
    with pytest.raises(ArmWithdrawn):
        services.experiment_stop(experiment=withdrawn, promote=cf_version_two.pk)
    kept = manager.post(f"{EXPERIMENTS}{withdrawn.pk}/stop/", {"keep_control": True}, format="json")
    assert kept.status_code == 200 and kept.json()["outcome"] == "kept_control"


def test_the_admin_names_the_arm_and_offers_no_promotion(withdrawn, client, superuser):
    client.force_login(superuser)

    page = client.get(f"{ADMIN}{withdrawn.pk}/change/").content.decode()
    stop = client.get(f"{ADMIN}{withdrawn.pk}/stop/").content.decode()

    assert "Arm B (cf-two) was withdrawn by the system" in page
    assert "Arm B (cf-two) was withdrawn by the system" in stop
    assert "Stop and promote B" not in stop


def test_a_touched_file_is_served_again_and_not_withdrawn(api, running, cf_version_two, settings):
    path = candidate_file(settings, cf_version_two)
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))

    assert api.get(RECS.format("C0001")).json()["experiment"] is None
    notice_now(get_cache())

    assert ModelVersion.objects.get(pk=cf_version_two.pk).status == ModelVersion.Status.READY
    assert get_cache().experiment("cf") is not None
    assert api.get(HEALTH).json()["withdrawn_arms"] == {}
