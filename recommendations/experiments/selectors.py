"""Reads of experiments: the running arms serving needs (one query), listings and lookups."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import QuerySet

from modelstore.models import ModelVersion
from modelstore.selectors import MAX_ID

from .exceptions import ExperimentNotFound
from .models import Arm, Experiment


@dataclass(frozen=True)
class ArmPlan:
    """One arm as serving sees it: its version's file and its share."""

    arm_id: int
    name: str
    position: int
    share: float
    is_control: bool
    version_id: int
    label: str
    sha256: str
    file: str
    status: str = ModelVersion.Status.READY
    error: str = ""

    @property
    def withdrawn(self) -> bool:
        """Return True if the system withdrew this arm's version (its file changed): it cannot serve."""
        return self.status == ModelVersion.Status.FAILED


@dataclass(frozen=True)
class ExperimentPlan:
    """A running experiment as serving sees it: its id, kind and arms in position order."""

    experiment_id: int
    kind: str
    arms: tuple[ArmPlan, ...]

    @property
    def key(self) -> tuple:
        """Return what makes two plans serve the same split."""
        return (self.experiment_id, tuple((arm.arm_id, arm.version_id, arm.sha256) for arm in self.arms))


def running_plans() -> dict[str, ExperimentPlan]:
    """Return ``{kind: ExperimentPlan}`` of the running experiments, in one query."""
    rows = (
        Arm.objects.filter(experiment__status=Experiment.Status.RUNNING)
        .order_by("experiment_id", "position")
        .values_list(
            "experiment_id",
            "experiment__kind",
            "pk",
            "name",
            "position",
            "share",
            "is_control",
            "version_id",
            "version__label",
            "version__sha256",
            "version__file",
            "version__status",
            "version__error",
        )
    )
    arms: dict[tuple[int, str], list[ArmPlan]] = {}
    for experiment_id, kind, *arm in rows:
        arms.setdefault((experiment_id, kind), []).append(ArmPlan(*arm))
    return {
        kind: ExperimentPlan(experiment_id, kind, tuple(found))
        for (experiment_id, kind), found in arms.items()
    }


def running_experiment(kind: str) -> Experiment | None:
    """Return the experiment running for ``kind``, or None."""
    return Experiment.objects.filter(kind=kind, status=Experiment.Status.RUNNING).first()


def experiment_list(*, kind: str | None = None, status: str | None = None) -> QuerySet[Experiment]:
    """Return experiments, the latest started first, with their arms and people."""
    experiments = Experiment.objects.select_related("started_by", "ended_by").prefetch_related(
        "arms__version"
    )
    if kind:
        experiments = experiments.filter(kind=kind)
    if status:
        experiments = experiments.filter(status=status)
    return experiments


def experiment_get(ref: object) -> Experiment:
    """Return the experiment with id ``ref``; raise ``ExperimentNotFound``."""
    text = str(ref)
    found = None
    if text.isascii() and text.isdigit() and int(text) <= MAX_ID:
        found = experiment_list().filter(pk=int(text)).first()
    if found is None:
        raise ExperimentNotFound(f"no experiment with id {text[:50]!r}")
    return found


def experiment_as_dict(experiment: Experiment) -> dict:
    """Return the public description of an experiment and its arms (the API and the admin)."""
    return {
        "id": experiment.pk,
        "kind": experiment.kind,
        "name": experiment.name,
        "status": experiment.status,
        "started_at": experiment.started_at.isoformat(),
        "started_by": experiment.started_by.get_username() if experiment.started_by else None,
        "ended_at": experiment.ended_at.isoformat() if experiment.ended_at else None,
        "ended_by": experiment.ended_by.get_username() if experiment.ended_by else None,
        "outcome": experiment.outcome,
        "promoted_version": experiment.promoted_version_id,
        "reason": experiment.reason,
        "arms": [
            {
                "name": arm.name,
                "version": arm.version_id,
                "label": arm.version.label,
                "share": arm.share,
                "is_control": arm.is_control,
                "position": arm.position,
                "withdrawn": withdrawal(arm.version),
            }
            for arm in sorted(experiment.arms.all(), key=lambda arm: arm.position)
        ],
        "withdrawn_arms": [
            arm.name
            for arm in sorted(experiment.arms.all(), key=lambda arm: arm.position)
            if arm.version.status == ModelVersion.Status.FAILED
        ],
    }


def withdrawal(version: ModelVersion) -> str | None:
    """Return why the system withdrew an arm's version (its file changed), or None while it can serve."""
    if version.status != ModelVersion.Status.FAILED:
        return None
    return version.error or "its file no longer verifies"


def withdrawn_arms(experiment: Experiment) -> QuerySet[Arm]:
    """Return the arms of ``experiment`` whose version the system withdrew, in position order."""
    return (
        experiment.arms.select_related("version", "experiment")
        .filter(version__status=ModelVersion.Status.FAILED)
        .order_by("position")
    )
