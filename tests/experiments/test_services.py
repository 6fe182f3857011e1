"""Starting and stopping experiments: the rules people meet, the audit, and promotion as activation."""

import pytest
from django.contrib.admin.models import LogEntry

from modelstore.models import ActivationEvent, ModelVersion
from recommendations.experiments import services
from recommendations.experiments.exceptions import (
    ExperimentError,
    ExperimentNotRunning,
    ExperimentRunning,
    InvalidArms,
)
from recommendations.experiments.models import Experiment, ExperimentChange
from tests import factories

pytestmark = pytest.mark.django_db


def start(control, *candidates, shares=None, kind="cf", user=None):
    versions = [control, *candidates]
    shares = shares or [1 / len(versions)] * len(versions)
    return services.experiment_start(
        kind=kind,
        name="split",
        arms=[{"version": v.pk, "share": s} for v, s in zip(versions, shares, strict=True)],
        user=user,
    )


def test_start_names_the_active_version_control_and_candidates_by_letter(
    cf_version, cf_version_two, superuser
):
    experiment = start(cf_version, cf_version_two, shares=[0.7, 0.3], user=superuser)

    arms = list(experiment.arms.order_by("position").values_list("name", "version_id", "share", "is_control"))
    assert arms == [("control", cf_version.pk, 0.7, True), ("B", cf_version_two.pk, 0.3, False)]
    assert experiment.status == "running" and experiment.started_by == superuser
    assert list(experiment.changes.values_list("action", flat=True)) == ["started"]
    assert LogEntry.objects.filter(
        object_id=str(experiment.pk), change_message__startswith="Started"
    ).exists()


def test_the_control_may_come_after_the_candidates(cf_version, cf_version_two, cf_version_three):
    experiment = start(cf_version_two, cf_version, cf_version_three)

    names = list(experiment.arms.order_by("position").values_list("name", flat=True))
    assert names == ["B", "control", "C"]


@pytest.mark.parametrize(
    ("shares", "message"),
    [
        ([0.5, 0.4], "sum to 1, they sum to 0.9"),
        ([0.6, 0.6], "sum to 1, they sum to 1.2"),
        ([1.0, 0.0], "share must be in (0, 1]"),
        ([1.5, -0.5], "share must be in (0, 1]"),
        ([float("nan"), 0.5], "share must be a number"),
        (["0.5", 0.5], "share must be a number"),
    ],
)
def test_shares_that_do_not_split_the_traffic_are_refused(cf_version, cf_version_two, shares, message):
    with pytest.raises(InvalidArms, match=message.replace("(", r"\(").replace(")", r"\)")):
        start(cf_version, cf_version_two, shares=shares)
    assert not Experiment.objects.exists()


def test_shares_within_the_tolerance_of_one_are_accepted(cf_version, cf_version_two, cf_version_three):
    experiment = start(cf_version, cf_version_two, cf_version_three, shares=[0.333333, 0.333333, 0.333334])
    assert experiment.arms.count() == 3
    services.experiment_stop(experiment=experiment, keep_control=True)
    with pytest.raises(InvalidArms, match="sum to 1"):
        start(cf_version, cf_version_two, cf_version_three, shares=[0.333, 0.333, 0.333])


def test_versions_must_be_ready_of_the_kind_and_named_once(register, cf_version, cf_version_two):
    cb = register("cb", factories.cb_array_set(seed=1), label="cb-x")
    with pytest.raises(InvalidArms, match="is a cb version, not cf"):
        start(cf_version, cb)
    ModelVersion.objects.filter(pk=cf_version_two.pk).update(status=ModelVersion.Status.FAILED)
    with pytest.raises(InvalidArms, match="is failed; only ready versions"):
        start(cf_version, cf_version_two)
    with pytest.raises(InvalidArms, match="already an arm"):
        services.experiment_start(
            kind="cf", name="twice", arms=[{"version": cf_version.pk, "share": 0.5}] * 2
        )
    with pytest.raises(InvalidArms, match="no cf version with id 999999"):
        services.experiment_start(
            kind="cf",
            name="ghost",
            arms=[{"version": cf_version.pk, "share": 0.5}, {"version": 999999, "share": 0.5}],
        )
    with pytest.raises(InvalidArms, match="2 to 10 arms"):
        services.experiment_start(kind="cf", name="alone", arms=[{"version": cf_version.pk, "share": 1.0}])
    with pytest.raises(InvalidArms, match="kind must be one of"):
        services.experiment_start(kind="xx", name="bad", arms=[])


def test_the_active_version_must_be_an_arm(cf_version, cf_version_two, cf_version_three):
    with pytest.raises(InvalidArms, match="must be one of the arms: it is the control"):
        start(cf_version_two, cf_version_three)


def test_one_running_experiment_per_kind(cf_version, cf_version_two, cf_version_three):
    first = start(cf_version, cf_version_two)
    with pytest.raises(ExperimentRunning, match="already runs for cf"):
        start(cf_version, cf_version_three)
    services.experiment_stop(experiment=first, keep_control=True)
    start(cf_version, cf_version_three)


def test_stop_keeping_the_control_leaves_the_active_version(cf_version, cf_version_two, superuser):
    experiment = start(cf_version, cf_version_two)

    services.experiment_stop(experiment=experiment, keep_control=True, user=superuser, reason="no lift")

    experiment.refresh_from_db()
    assert (experiment.status, experiment.outcome, experiment.ended_by, experiment.reason) == (
        "stopped",
        "kept_control",
        superuser,
        "no lift",
    )
    assert ModelVersion.objects.get(kind="cf", is_active=True) == cf_version
    assert experiment.changes.first().action == ExperimentChange.Action.STOPPED
    with pytest.raises(ExperimentNotRunning):
        services.experiment_stop(experiment=experiment, keep_control=True)


def test_promotion_is_an_audited_activation(cf_version, cf_version_two, superuser):
    experiment = start(cf_version, cf_version_two)

    services.experiment_stop(experiment=experiment, promote=cf_version_two.pk, user=superuser)

    experiment.refresh_from_db()
    assert (experiment.outcome, experiment.promoted_version) == ("promoted", cf_version_two)
    assert ModelVersion.objects.get(kind="cf", is_active=True) == cf_version_two
    event = ActivationEvent.objects.first()
    assert (event.from_version, event.to_version, event.user) == (cf_version, cf_version_two, superuser)
    assert experiment.changes.first().action == ExperimentChange.Action.PROMOTED


def test_only_a_candidate_can_be_promoted(cf_version, cf_version_two, cf_version_three):
    experiment = start(cf_version, cf_version_two)
    with pytest.raises(InvalidArms, match="is the control"):
        services.experiment_stop(experiment=experiment, promote=cf_version.pk)
    with pytest.raises(InvalidArms, match="is not an arm"):
        services.experiment_stop(experiment=experiment, promote=cf_version_three.pk)
    with pytest.raises(ExperimentError, match="either"):
        services.experiment_stop(experiment=experiment, promote=cf_version_two.pk, keep_control=True)
    experiment.refresh_from_db()
    assert experiment.status == "running"


def test_the_permission_is_activations(client_for):
    from tests.support import roles

    assert services.can_run_experiments(roles.person("staff+activate_modelversion"))
    assert services.can_run_experiments(roles.person("superuser"))
    assert not services.can_run_experiments(roles.person("staff"))
    assert not services.can_run_experiments(roles.person("user"))
    assert not services.can_run_experiments(None)
