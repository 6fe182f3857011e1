"""Activation while an experiment runs: every door refuses it the same way, and nothing changes."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from modelstore import selectors
from modelstore import services as registry
from modelstore.models import ActivationEvent, ModelVersion
from recommendations.experiments import services
from recommendations.experiments.exceptions import ExperimentRunning
from recommendations.experiments.models import Experiment
from recommendations.serving import get_cache
from tests.experiments.conftest import notice_now

pytestmark = pytest.mark.django_db

MODELS = "/api/v1/models/"
RECS = "/api/v1/recommendations/{}/"


@pytest.fixture
def running(cf_version, cf_version_two, cf_version_three):
    """Return a running CF experiment; cf-three was active before cf-one (the rollback target)."""
    registry.version_activate(version=cf_version_three)
    registry.version_activate(version=cf_version)
    experiment = services.experiment_start(
        kind="cf",
        name="half",
        arms=[{"version": cf_version.pk, "share": 0.5}, {"version": cf_version_two.pk, "share": 0.5}],
    )
    notice_now(get_cache())
    return experiment


@pytest.fixture
def admin(client, superuser):
    client.force_login(superuser)
    return client


def unchanged(running, cf_version, events):
    """Assert the control is still the active version and no activation was recorded."""
    assert selectors.active_version("cf").pk == cf_version.pk
    assert ActivationEvent.objects.count() == events
    assert Experiment.objects.get(pk=running.pk).status == Experiment.Status.RUNNING
    return True


def test_the_service_refuses_activation_and_rollback_while_an_experiment_runs(
    running, cf_version, cf_version_three
):
    events = ActivationEvent.objects.count()

    with pytest.raises(
        ExperimentRunning, match=rf"stop it first \(POST /api/v1/experiments/{running.pk}/stop/"
    ):
        registry.version_activate(version=cf_version_three)
    with pytest.raises(ExperimentRunning, match="cannot be activated now"):
        registry.version_rollback(kind="cf")

    assert unchanged(running, cf_version, events)


def test_the_api_answers_409_experiment_running_and_serving_is_unchanged(
    client_for, running, cf_version, cf_version_three
):
    manager, events = client_for("superuser"), ActivationEvent.objects.count()

    activate = manager.post(f"{MODELS}{cf_version_three.pk}/activate/")
    rollback = manager.post(f"{MODELS}rollback/", {"kind": "cf"}, format="json")
    notice_now(get_cache())
    answer = client_for("user").get(RECS.format("C0001")).json()

    for response in (activate, rollback):
        assert response.status_code == 409, response.content
        assert response.json()["code"] == "experiment_running"
        assert f"/api/v1/experiments/{running.pk}/stop/" in response.json()["detail"]
    assert unchanged(running, cf_version, events)
    assert answer["experiment"]["id"] == running.pk
    assert ModelVersion.objects.get(pk=cf_version_three.pk).activated_by is None


def test_the_admin_pages_say_why_and_change_nothing(admin, running, cf_version, cf_version_three):
    events = ActivationEvent.objects.count()
    activate = reverse("admin:modelstore_modelversion_activate", args=[cf_version_three.pk])
    rollback = reverse("admin:modelstore_modelversion_rollback", args=["cf"])

    pages = [admin.get(activate).content.decode(), admin.get(rollback).content.decode()]
    activated = admin.post(activate, follow=True)
    rolled_back = admin.post(rollback, follow=True)

    for response, verb in ((activated, "Not activated"), (rolled_back, "Not rolled back")):
        texts = [str(message) for message in response.context["messages"]]
        assert any(text.startswith(verb) and "stop it first" in text for text in texts), texts
    for page in pages:  # said before anyone asks, and no button to ask with
        assert "Not now: experiment" in page and f"/api/v1/experiments/{running.pk}/stop/" in page
        assert 'name="_activate"' not in page and 'name="_rollback"' not in page
    assert unchanged(running, cf_version, events)


def test_the_commands_fail_with_one_line(running, cf_version, cf_version_three):
    events = ActivationEvent.objects.count()

    for args in (("activate_model", str(cf_version_three.pk)), ("rollback_model", "--kind", "cf")):
        with pytest.raises(CommandError) as refused:
            call_command(*args, stdout=StringIO(), stderr=StringIO())
        assert "experiment" in str(refused.value) and "\n" not in str(refused.value)

    assert unchanged(running, cf_version, events)


def test_promotion_ends_the_experiment_then_activates_in_one_transaction(running, cf_version_two):
    services.experiment_stop(experiment=running, promote=cf_version_two.pk)

    running.refresh_from_db()
    assert (running.status, running.outcome) == ("stopped", "promoted")
    assert selectors.active_version("cf").pk == cf_version_two.pk


def test_after_the_experiment_stops_activation_works_again(running, cf_version_three):
    services.experiment_stop(experiment=running, keep_control=True)

    assert registry.version_activate(version=cf_version_three) is not None
    assert selectors.active_version("cf").pk == cf_version_three.pk


def test_activating_the_version_already_active_is_not_refused(running, cf_version):
    assert registry.version_activate(version=cf_version) is None


def test_a_verification_asked_to_activate_leaves_the_version_ready_and_says_why(
    running, cf_version, cf_version_three, caplog
):
    from modelstore import tasks

    status = tasks.verify_bundle(cf_version_three.pk, activate=True)

    assert status == ModelVersion.Status.READY
    assert selectors.active_version("cf").pk == cf_version.pk
    assert "not activating cf-three" in caplog.text and "stop it first" in caplog.text
