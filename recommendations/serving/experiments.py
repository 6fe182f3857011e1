"""Experiments in the model cache: the running splits, their arms' models, and which arm answers.

At every check (and at once when a start or stop is announced on the swap channel, like an
activation) the cache reads the running experiments (``recommendations.experiments.selectors``,
one query). For a new or changed split it gets a model for every arm: the one it already
serves when the version is the same (the active version, an arm of the previous split, or
the model a promotion just replaced), else it loads the version with the same loader as the
active one (file verified, memory-mapped, held). Only when every arm has a model is the split
swapped in, by one reference assignment; until then answers come from the active version and
name no experiment. A stopped experiment's split is dropped at the next check, and with it
the candidates' models (their files are closed when no request holds them any more).

A served arm's file is checked like the active one: one ``fstat`` per request, and its
identity at every check. A changed file drops the split at once (answers come from the active
version, uncounted); the next check loads the arm again, and when its content is not what the
registry verified (not a mere ``touch``) the arm's version is withdrawn as an active one would
be (``version_quarantine``: ``failed``, with the reason). An experiment with a withdrawn arm is
not served by any process; health and the experiment name the arm until someone stops it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import DatabaseError

from modelstore import services
from modelstore.models import ModelVersion
from recommendations.experiments import selectors as experiment_selectors
from recommendations.experiments.assignment import Assignment, unit_interval

from .exceptions import BundleFileChanged
from .loading import LoadedModel, load
from .state import bundle_target

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServedArm:
    """One arm of a running experiment and the model that answers for it."""

    arm_id: int
    name: str
    version_id: int
    is_control: bool
    model: LoadedModel


@dataclass(frozen=True)
class ServedExperiment:
    """A running experiment as this process serves it: its split and a model per arm."""

    experiment_id: int
    kind: str
    key: tuple
    assignment: Assignment
    arms: tuple[ServedArm, ...]

    def arm_for(self, customer_id: str) -> ServedArm:
        """Return the arm that serves ``customer_id``: the same in every process and node."""
        return self.arms[self.assignment.arm_index(customer_id)]

    def arm_for_point(self, point: float) -> ServedArm:
        """Return the arm whose interval holds ``point`` in [0, 1) (an answer with no customer)."""
        return self.arms[self.assignment.index_of_point(point)]

    def tag(self, arm: ServedArm) -> dict:
        """Return how an answer names its experiment: ``{"id", "arm", "version"}``."""
        return {"id": self.experiment_id, "arm": arm.name, "version": arm.version_id}

    def files_touched(self) -> bool:
        """Return True if any arm's file was written, resized or unlinked (one fstat per arm)."""
        return any(arm.model.file_touched() for arm in self.arms)


def random_point(experiment_id: int, request_id: str) -> float:
    """Return a point in [0, 1) for an answer with no customer, from its request id."""
    return unit_interval(experiment_id, request_id)


class ExperimentsMixin:
    """The ``ModelCache`` methods that keep the running experiments' arms loaded.

    They use the cache's ``_states`` and ``retry_seconds``.
    """

    def _init_experiments(self):
        self._experiments: dict[str, ServedExperiment] = {}
        self._arm_errors: dict[tuple, float] = {}  # a target's key → monotonic time it may be retried
        # kind → (experiment id, {arm name: (version id, label, reason)}) of arms withdrawn
        self._withdrawn_arms: dict[str, tuple[int, dict[str, tuple[int, str, str]]]] = {}
        self.experiment_error: str | None = None

    # --- what requests call -------------------------------------------------------------

    def experiment(self, kind):
        """Return the experiment this process serves for ``kind`` now, or None.

        A split whose arm files changed is dropped here, before any request reads them.
        """
        if not self.watching:
            self._maybe_check()
        served = self._experiments.get(kind)
        if served is not None and served.files_touched():
            logger.warning(
                "a file of experiment %s changed; its split stops until it loads again", served.key[0]
            )
            self._drop_experiment(kind, served)
            return None
        return served

    def model_for_version(self, kind, version_id):
        """Return the loaded model of ``version_id`` (the active one or an arm's), or None."""
        model = self._states[kind].model
        if model is not None and model.target.version_id == version_id:
            return model
        served = self._experiments.get(kind)
        for arm in served.arms if served else ():
            if arm.version_id == version_id:
                return arm.model
        return None

    def describe_experiments(self):
        """Return what health reports: per kind, the experiment served and its arms' versions."""
        return {
            kind: {"id": served.experiment_id, "arms": {arm.name: arm.version_id for arm in served.arms}}
            for kind, served in self._experiments.items()
        }

    def describe_withdrawn_arms(self):
        """Return, per kind, the running experiment not served because arms of it were withdrawn."""
        return {
            kind: {
                "experiment": experiment_id,
                "arms": {
                    name: {"version": version_id, "label": label, "reason": reason}
                    for name, (version_id, label, reason) in arms.items()
                },
            }
            for kind, (experiment_id, arms) in self._withdrawn_arms.items()
        }

    # --- the check --------------------------------------------------------------------------

    def _check_experiments(self, now):
        """Serve the running experiments' splits; drop stopped ones. Called by every check."""
        try:
            plans = experiment_selectors.running_plans()
        except DatabaseError as exc:
            self.experiment_error = f"the experiments could not be read: {exc}"
            return  # the splits served keep serving, as loaded models do
        self.experiment_error = None
        self._withdrawn_arms = {
            kind: (plan.experiment_id, withdrawn)
            for kind, plan in plans.items()
            if (
                withdrawn := {
                    arm.name: (arm.version_id, arm.label, arm.error) for arm in plan.arms if arm.withdrawn
                }
            )
        }
        for kind in list(self._experiments):
            if kind not in plans or kind in self._withdrawn_arms:
                self._drop_experiment(kind, self._experiments[kind])
        for kind, plan in plans.items():
            if kind not in self._states or kind in self._withdrawn_arms:
                continue  # a withdrawn arm cannot serve: the active version answers, uncounted
            served = self._experiments.get(kind)
            if served is not None and served.key == plan.key and not self._arms_changed(served):
                continue
            if self._states[kind].model is None:
                self._load_first(
                    self._states[kind]
                )  # as the kind's first request would: the control shares it
            built = self._build_experiment(plan, served, now)
            if built is not None:
                self._experiments = {**self._experiments, kind: built}
                logger.info("serving experiment %s for %s", plan.experiment_id, kind)
            elif served is not None:
                self._drop_experiment(kind, served)

    def _arms_changed(self, served):
        return any(arm.model.file_change() is not None for arm in served.arms)

    def _drop_experiment(self, kind, served):
        if self._experiments.get(kind) is served:
            self._experiments = {name: value for name, value in self._experiments.items() if name != kind}
            logger.info("stopped serving experiment %s for %s", served.experiment_id, kind)

    def _build_experiment(self, plan, served, now):
        """Return a ServedExperiment with a model for every arm of ``plan``, or None."""
        arms = []
        for arm in plan.arms:
            model = self._arm_model(plan.experiment_id, plan.kind, arm, served, now)
            if model is None:
                return None
            arms.append(ServedArm(arm.arm_id, arm.name, arm.version_id, arm.is_control, model))
        assignment = Assignment(plan.experiment_id, [arm.share for arm in plan.arms])
        return ServedExperiment(plan.experiment_id, plan.kind, plan.key, assignment, tuple(arms))

    def _arm_model(self, plan_id, kind, arm, served, now):
        target = bundle_target(
            kind, {"id": arm.version_id, "label": arm.label, "file": arm.file, "sha256": arm.sha256}
        )
        known = self.loaded_model(target)
        if known is not None and known.file_change() is None:
            return known
        if now < self._arm_errors.get(target.key, 0.0):
            return None
        try:
            model = load(target, stamp_dir=Path(settings.HYBRIDREC_BUNDLE_CACHE_DIR))
        except BundleFileChanged as exc:  # its content is not what was verified: withdraw it
            self._arm_errors[target.key] = time.monotonic() + self.retry_seconds
            self._withdraw_arm(plan_id, kind, arm, str(exc))
            return None
        except Exception as exc:  # the split waits; the active version keeps answering
            self._arm_errors[target.key] = time.monotonic() + self.retry_seconds
            self.experiment_error = f"arm {arm.name} ({target.label}) could not be loaded: {exc}"
            logger.warning("cannot load experiment arm %s %s: %s", kind, target.label, exc)
            return None
        self._arm_errors.pop(target.key, None)
        logger.info("loaded experiment arm %s %s in %.3f s", kind, target.label, model.load_seconds)
        return model

    def _withdraw_arm(self, experiment_id, kind, arm, reason):
        """Have the registry withdraw an arm's version whose file changed, and say so in health."""
        logger.error(
            "experiment %s arm %s (%s) stops being served: %s", experiment_id, arm.name, arm.label, reason
        )
        _, withdrawn = self._withdrawn_arms.get(kind, (experiment_id, {}))
        self._withdrawn_arms = {
            **self._withdrawn_arms,
            kind: (experiment_id, {**withdrawn, arm.name: (arm.version_id, arm.label, reason)}),
        }
        try:
            services.version_quarantine(version=ModelVersion(pk=arm.version_id, kind=kind), reason=reason)
        except DatabaseError as exc:  # tried again when the arm is retried (``retry_seconds``)
            self._registry_unreadable(exc)

    def loaded_model(self, target):
        """Return a model this process already holds for ``target`` (same version and file), or None."""
        state = self._states[target.kind]
        served = self._experiments.get(target.kind)
        for model in (
            state.model,
            state.previous,
            *(arm.model for arm in (served.arms if served else ())),
        ):
            if model is not None and model.target.key == target.key:
                return model
        return None
