"""Activate a version, roll back to the previous one, or withdraw a faulty one."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING

from django.db import transaction
from django.utils import timezone

from hybridrec import swaps

from .. import audit, guards, selectors, storage
from ..exceptions import CorruptBundle, NothingToRollBack, RegistryError, VersionNotReady
from ..models import ActivationEvent, ModelVersion
from .locking import lock_kind

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

logger = logging.getLogger(__name__)


def version_activate_when_ready(
    *, version: ModelVersion, user: AbstractBaseUser | None = None, asked_at: datetime | None = None
) -> bool:
    """Activate a version just verified when it turned out ready; return True when it was.

    A request made at ``asked_at`` gives way to a newer decision: a late delivery of it (a lost
    worker's message coming back) does not activate when another version of the kind was
    activated since. Every rule of ``version_activate`` applies; a refusal is raised.
    """
    if version.status != ModelVersion.Status.READY:
        return False
    if asked_at is not None and selectors.kind_activated_since(version.kind, asked_at):
        logger.warning(
            "not activating %s: another %s version was activated since %s",
            version.label,
            version.kind,
            asked_at,
        )
        return False
    version_activate(version=version, user=user)
    version.refresh_from_db()
    return True


@transaction.atomic
def version_activate(
    *,
    version: ModelVersion,
    user: AbstractBaseUser | None = None,
    action: str = ActivationEvent.Action.ACTIVATE,
) -> ActivationEvent | None:
    """Make a ready version the active one of its kind, in one transaction, with an audit row.

    With object storage, the file is fetched into this node's cache first: a version the
    storage cannot give now is refused (``StorageUnavailable``) and the active one stays. The
    guards other apps registered (``modelstore.guards``) may refuse too: a running experiment
    for the kind does (``experiment_running``).
    """
    if storage.is_remote() and version.file:
        try:
            storage.local_path(version.file.name, version.sha256)
        except CorruptBundle as exc:
            raise RegistryError(f"version {version.label} cannot be activated: {exc}") from exc
    rows = lock_kind(version.kind)
    target = next((row for row in rows if row.pk == version.pk), None)
    if target is None:
        raise RegistryError(f"version {version.pk} no longer exists")
    if target.status != ModelVersion.Status.READY:
        raise VersionNotReady(
            f"version {target.label} is {target.status}; only a ready version can be activated"
        )
    current = next((row for row in rows if row.is_active), None)
    if current is not None and current.pk == target.pk:
        return None
    guards.check_activation(kind=target.kind, version=target)
    if current is not None:
        ModelVersion.objects.filter(pk=current.pk).update(is_active=False)
    now = timezone.now()
    ModelVersion.objects.filter(pk=target.pk).update(is_active=True, activated_at=now, activated_by=user)
    version.refresh_from_db()
    event = ActivationEvent.objects.create(
        kind=target.kind,
        action=action,
        from_version=current,
        to_version=target,
        from_label=current.label if current else "",
        to_label=target.label,
        user=user,
    )
    was = f" (was {current.label})" if current else ""
    verb = "Rolled back to this version" if action == ActivationEvent.Action.ROLLBACK else "Activated"
    audit.log_version_action(user=user, version=target, flag=audit.CHANGE, message=f"{verb}{was}.")
    swaps.announce(target.kind)
    return event


def version_activation_refusal(version: ModelVersion) -> RegistryError | None:
    """Return why a registered rule (``modelstore.guards``) refuses to activate ``version`` now, or None.

    What a page reads to say so before anyone asks; ``version_activate`` checks again, locked.
    """
    try:
        guards.check_activation(kind=version.kind, version=version)
    except RegistryError as exc:
        return exc
    return None


@transaction.atomic
def version_rollback(*, kind: str, user: AbstractBaseUser | None = None) -> ActivationEvent | None:
    """Re-activate the version that was active before the current one of this kind.

    The kind's rows are locked before the target is chosen, so concurrent rollbacks run one
    after the other, each from the state the previous one left.
    """
    lock_kind(kind)
    target = selectors.rollback_target(kind)
    if target is None:
        raise NothingToRollBack(f"no earlier {kind} version to roll back to")
    if target.status != ModelVersion.Status.READY:
        raise VersionNotReady(f"the previous {kind} version {target.label} is {target.status}")
    return version_activate(version=target, user=user, action=ActivationEvent.Action.ROLLBACK)


@transaction.atomic
def version_quarantine(
    *, version: ModelVersion, reason: str, fallback: ModelVersion | int | None = None
) -> ActivationEvent | None:
    """Mark a version whose stored file changed or vanished ``failed``; if it was active, roll back.

    The kind goes back to ``fallback`` when given and ready, else to the most recently active
    ready version (``selectors.last_good_versions``), as an activation by the system that
    records ``reason``. Return the audit row, or None when the version was not active (or was
    already withdrawn by another process). Safe to call from many processes at once.
    """
    rows = lock_kind(version.kind)
    bad = next((row for row in rows if row.pk == version.pk), None)
    if bad is None:
        return None
    was_active = bad.is_active
    if bad.status == ModelVersion.Status.FAILED and not was_active:
        return None
    ModelVersion.objects.filter(pk=bad.pk).update(
        status=ModelVersion.Status.FAILED, error=reason, is_active=False
    )
    if not was_active:
        return None
    swaps.announce(bad.kind)
    ready = {row.pk: row for row in rows if row.pk != bad.pk and row.status == ModelVersion.Status.READY}
    target = ready.get(getattr(fallback, "pk", fallback))
    if target is None:
        target = next((row for row in selectors.last_good_versions(bad.kind, exclude=bad.pk)), None)
    if target is not None:
        ModelVersion.objects.filter(pk=target.pk).update(
            is_active=True, activated_at=timezone.now(), activated_by=None
        )
    logger.warning(
        "withdrew %s %s (%s); %s",
        bad.kind,
        bad.label,
        reason,
        f"serving {target.label}" if target else "nothing to roll back to",
    )
    return ActivationEvent.objects.create(
        kind=bad.kind,
        action=ActivationEvent.Action.QUARANTINE,
        from_version=bad,
        to_version=target,
        from_label=bad.label,
        to_label=target.label if target else "",
        reason=reason,
    )
