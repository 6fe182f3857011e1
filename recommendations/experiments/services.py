"""Start and stop experiments: the rules, the audit, and the announcement serving listens to.

Who may: the permission that activation takes (``PERMISSION``), since starting an experiment
puts candidate versions in front of customers and stopping one may activate a version.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from hybridrec import swaps
from modelstore import audit
from modelstore.bundles import KINDS
from modelstore.models import ModelVersion
from modelstore.services import lock_kind, version_activate

from .exceptions import (
    ArmWithdrawn,
    ExperimentError,
    ExperimentNotRunning,
    ExperimentRunning,
    InvalidArms,
)
from .models import Arm, Experiment, ExperimentChange

PERMISSION = "modelstore.activate_modelversion"
# Shares are decimals people type ("0.333") held as floats: they rarely sum to exactly 1.
# A sum within 1e-6 of 1 is accepted; the last arm then takes whatever is left up to 1, so no
# customer falls between arms, and no arm's traffic moves by more than a millionth.
SHARE_TOLERANCE = 1e-6
MAX_ARMS = 10
CONTROL = "control"
CANDIDATE_NAMES = "BCDEFGHIJK"


def can_run_experiments(user: Any) -> bool:
    """Return True if ``user`` may start and stop experiments."""
    return bool(user is not None and user.is_authenticated and user.has_perm(PERMISSION))


@transaction.atomic
def experiment_start(
    *,
    kind: str,
    name: str,
    arms: Iterable[Mapping[str, object]],
    user: Any = None,  # any user model; None for the system
) -> Experiment:
    """Start an experiment for ``kind`` with ``arms`` (``[{"version": id or ModelVersion, "share"}, …]``).

    The control is the arm whose version is the kind's active version (it must be one of the
    arms); the others are candidates, named B, C, … in the order given, which is also their
    order on the unit interval. Shares are in (0, 1] and sum to 1 (within ``SHARE_TOLERANCE``);
    every version is ready, of ``kind`` and named once. Raise ``InvalidArms`` or
    ``ExperimentRunning``.
    """
    if kind not in KINDS:
        raise InvalidArms(f"kind must be one of {', '.join(KINDS)}, got {str(kind)[:20]!r}")
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise InvalidArms("an experiment needs a name of 1 to 100 characters")
    arms = list(arms)
    if not 2 <= len(arms) <= MAX_ARMS:
        raise InvalidArms(
            f"an experiment needs 2 to {MAX_ARMS} arms (the control and candidates), got {len(arms)}"
        )
    # The kind's versions are locked as activation locks them, so a start and an activation
    # (or another start) run one after the other.
    rows = {row.pk: row for row in lock_kind(kind)}
    versions, shares = _checked_arms(kind, arms, rows)
    active = next((row for row in rows.values() if row.is_active), None)
    if active is None:
        raise InvalidArms(f"no {kind} version is active: the active version is the control")
    if active.pk not in {version.pk for version in versions}:
        raise InvalidArms(
            f"the active {kind} version {active.label} (id {active.pk}) must be one of the arms: it is the control"
        )
    if Experiment.objects.filter(kind=kind, status=Experiment.Status.RUNNING).exists():
        raise ExperimentRunning(f"an experiment already runs for {kind}; stop it first")
    try:
        with transaction.atomic():
            experiment = Experiment.objects.create(kind=kind, name=name, started_by=user)
    except IntegrityError as exc:  # another start won the race between the check and the insert
        raise ExperimentRunning(f"an experiment already runs for {kind}; stop it first") from exc
    candidates = iter(CANDIDATE_NAMES)
    Arm.objects.bulk_create(
        Arm(
            experiment=experiment,
            version=version,
            share=share,
            is_control=version.pk == active.pk,
            name=CONTROL if version.pk == active.pk else next(candidates),
            position=position,
        )
        for position, (version, share) in enumerate(zip(versions, shares, strict=True))
    )
    split = ", ".join(f"{version.label} {share:g}" for version, share in zip(versions, shares, strict=True))
    ExperimentChange.objects.create(experiment=experiment, action=ExperimentChange.Action.STARTED, by=user)
    audit.log_version_action(user=user, version=experiment, flag=audit.ADDITION, message=f"Started: {split}.")
    swaps.announce(kind)
    return experiment


def _promotable(experiment, promote):
    """Return the version of the candidate arm to promote, or raise saying why it cannot be."""
    version_id = promote.pk if isinstance(promote, ModelVersion) else promote
    # Locked as activation locks them, so a withdrawal cannot slip between this check and it.
    lock_kind(experiment.kind)
    arm = experiment.arms.select_related("version").filter(version_id=version_id).first()
    if arm is None:
        raise InvalidArms(f"version {version_id} is not an arm of experiment {experiment.pk}")
    if arm.is_control:
        raise InvalidArms(f"version {arm.version.label} is the control; stop with keep_control instead")
    if arm.version.status == ModelVersion.Status.FAILED:
        raise ArmWithdrawn(
            f"arm {arm.name} ({arm.version.label}) was withdrawn by the system and cannot be promoted: "
            f"{arm.version.error or 'its file no longer verifies'}; stop with keep_control, or "
            "promote another candidate"
        )
    return arm.version


def _checked_arms(kind, arms, rows):
    """Return the arms' versions and shares, or raise ``InvalidArms`` saying what is wrong."""
    versions, shares = [], []
    for number, arm in enumerate(arms, start=1):
        if not isinstance(arm, Mapping):
            raise InvalidArms(f"arm {number} must be an object with version and share")
        version, share = arm.get("version"), arm.get("share")
        version_id = version.pk if isinstance(version, ModelVersion) else version
        if isinstance(version_id, bool) or not isinstance(version_id, int):
            raise InvalidArms(f"arm {number}: version must be a version id")
        if isinstance(share, bool) or not isinstance(share, (int, float)) or not math.isfinite(share):
            raise InvalidArms(f"arm {number}: share must be a number in (0, 1]")
        if not 0 < share <= 1:
            raise InvalidArms(f"arm {number}: share must be in (0, 1], got {share:g}")
        row = rows.get(version_id)
        if row is None:
            other = ModelVersion.objects.filter(pk=version_id).values_list("kind", flat=True).first()
            if other is not None:
                raise InvalidArms(f"arm {number}: version {version_id} is a {other} version, not {kind}")
            raise InvalidArms(f"arm {number}: no {kind} version with id {version_id}")
        if row.status != ModelVersion.Status.READY and not row.is_active:
            raise InvalidArms(
                f"arm {number}: version {row.label} is {row.status}; only ready versions can serve"
            )
        if any(seen.pk == row.pk for seen in versions):
            raise InvalidArms(
                f"arm {number}: version {row.label} is already an arm; each version serves once"
            )
        versions.append(row)
        shares.append(float(share))
    total = math.fsum(shares)
    if abs(total - 1.0) > SHARE_TOLERANCE:
        raise InvalidArms(f"the shares must sum to 1, they sum to {total:.6g}")
    return versions, shares


@transaction.atomic
def experiment_stop(
    *,
    experiment: Experiment,
    user: Any = None,  # any user model; None for the system
    keep_control: bool = False,
    promote: ModelVersion | int | None = None,
    reason: str = "",
) -> Experiment:
    """Stop a running experiment, keeping the control or promoting a candidate's version.

    Promotion is an ordinary audited activation (``version_activate``), made once the
    experiment has ended; the version must be a candidate of this experiment, and not one the
    system withdrew (``ArmWithdrawn``). Exactly one of ``keep_control`` and ``promote`` is given.
    Raise ``ExperimentNotRunning``, ``InvalidArms``, ``ArmWithdrawn`` or the activation's own
    refusals.
    """
    if keep_control == (promote is not None):
        raise ExperimentError(
            'say either "keep_control" or "promote" (a candidate version id), not both or neither'
        )
    locked = Experiment.objects.select_for_update().filter(pk=experiment.pk).first()
    if locked is None or locked.status != Experiment.Status.RUNNING:
        raise ExperimentNotRunning(f"experiment {experiment.pk} is not running")
    promoted = None
    if promote is not None:
        promoted = _promotable(locked, promote)
    # The experiment ends first: activation refuses while one runs (``guards``). Both are in
    # this transaction, so a refused promotion leaves the experiment running.
    locked.status = Experiment.Status.STOPPED
    locked.ended_at = timezone.now()
    locked.ended_by = user
    locked.outcome = Experiment.Outcome.PROMOTED if promoted else Experiment.Outcome.KEPT_CONTROL
    locked.promoted_version = promoted
    locked.reason = reason
    locked.save(update_fields=["status", "ended_at", "ended_by", "outcome", "promoted_version", "reason"])
    if promoted is not None:
        version_activate(version=promoted, user=user)
    action = ExperimentChange.Action.PROMOTED if promoted else ExperimentChange.Action.STOPPED
    ExperimentChange.objects.create(experiment=locked, action=action, by=user, reason=reason)
    message = f"Stopped; promoted {promoted.label}." if promoted else "Stopped; kept the control."
    audit.log_version_action(user=user, version=locked, flag=audit.CHANGE, message=message)
    swaps.announce(locked.kind)
    experiment.refresh_from_db()
    return locked
