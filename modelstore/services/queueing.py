"""Queue work for a worker once the transaction commits; sweep what a lost worker left."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerError

from .. import audit
from ..bundles import parse_compression
from ..bundles.layout import check_factors_dtype
from ..exceptions import BrokerUnavailable, VersionBusy
from ..models import ModelVersion
from .building import version_fail_builds, version_start_build

if TYPE_CHECKING:
    from datetime import datetime
    from os import PathLike

    from celery import Task
    from django.contrib.auth.models import AbstractBaseUser

logger = logging.getLogger(__name__)


def task_queue(task: Task, *args: Any, **kwargs: Any) -> None:
    """Queue a task now; raise ``BrokerUnavailable`` when the broker cannot be reached."""
    try:
        task.delay(*args, **kwargs)
    except BrokerError as exc:
        raise BrokerUnavailable(f"the task queue cannot be reached ({exc}); nothing was queued") from exc


def version_queue_verify(
    *, version: ModelVersion, activate: bool = False, user: AbstractBaseUser | None = None
) -> None:
    """Queue verification of a version once the current transaction commits.

    A version still being built is refused (``VersionBusy``): verifying it would fail it and
    cancel the build. When the broker cannot be reached, ``BrokerUnavailable`` is raised.
    """
    from ..tasks import verify_bundle

    if ModelVersion.objects.filter(pk=version.pk, status=ModelVersion.Status.BUILDING).exists():
        raise VersionBusy(f"version {version.label} is still being built; verify it once it is built")
    user_id = getattr(user, "pk", None)
    requested_at = timezone.now().isoformat()
    transaction.on_commit(
        lambda: task_queue(
            verify_bundle, version.pk, activate=activate, user_id=user_id, requested_at=requested_at
        )
    )


def version_queue_build(
    *,
    kind: str,
    artifacts_path: str | PathLike[str],
    compress: str | None = None,
    factors_dtype: str = "float32",
    label: str = "",
    notes: str = "",
    activate: bool = False,
    user: AbstractBaseUser | None = None,
) -> ModelVersion:
    """Create a ``building`` row and queue its build once the current transaction commits.

    ``factors_dtype`` is as for ``version_build``.
    """
    from ..tasks import build_bundle

    parse_compression(compress)
    check_factors_dtype(factors_dtype)
    version = version_start_build(kind=kind, label=label, notes=notes, user=user)
    audit.log_version_action(
        user=user,
        version=version,
        flag=audit.ADDITION,
        message=f"Build queued from {Path(artifacts_path).name}.",
    )
    user_id = getattr(user, "pk", None)

    def send() -> None:
        try:
            task_queue(
                build_bundle,
                version.pk,
                str(artifacts_path),
                compress,
                activate=activate,
                user_id=user_id,
                factors_dtype=factors_dtype,
            )
        except BrokerUnavailable:
            version.delete()  # nothing will ever build it
            raise

    transaction.on_commit(send)
    return version


@dataclass(frozen=True)
class Swept:
    """What a sweep did: ids queued for verification again, and ids marked failed."""

    requeued: list[int]
    failed: list[int]


def version_sweep_stuck(*, now: datetime | None = None) -> Swept:
    """Queue again versions stuck ``pending`` or ``verifying``; fail builds that can no longer finish.

    A version whose status has not changed for ``HYBRIDREC_STUCK_VERIFY_SECONDS`` lost its
    worker or its message: it is verified again (idempotent; a slow verification still running
    only does the work twice). A ``building`` row older than ``HYBRIDREC_STUCK_BUILD_SECONDS``
    is marked failed with the reason. Each row is claimed with a conditional update, so two
    sweeps at once queue it once. When the broker is down nothing is claimed.
    """
    from ..tasks import verify_bundle

    now = now or timezone.now()
    verify_before = now - timedelta(seconds=settings.HYBRIDREC_STUCK_VERIFY_SECONDS)
    build_before = now - timedelta(seconds=settings.HYBRIDREC_STUCK_BUILD_SECONDS)
    requeued: list[int] = []
    stuck = ModelVersion.objects.filter(
        status__in=[ModelVersion.Status.PENDING, ModelVersion.Status.VERIFYING],
        status_changed_at__lt=verify_before,
    ).exclude(file="")
    for pk, changed_at in stuck.values_list("pk", "status_changed_at"):
        claimed = ModelVersion.objects.filter(pk=pk, status_changed_at=changed_at).update(
            status=ModelVersion.Status.PENDING, status_changed_at=now
        )
        if not claimed:
            continue
        try:
            task_queue(verify_bundle, pk)
        except BrokerUnavailable:
            ModelVersion.objects.filter(pk=pk, status_changed_at=now).update(status_changed_at=changed_at)
            raise
        requeued.append(pk)
    builds = ModelVersion.objects.filter(
        status=ModelVersion.Status.BUILDING, status_changed_at__lt=build_before
    )
    failed = list(builds.values_list("pk", flat=True))
    hours = settings.HYBRIDREC_STUCK_BUILD_SECONDS / 3600
    version_fail_builds(
        version_ids=failed,
        error=f"The build did not finish within {hours:g} h (its worker was probably lost); build it again.",
    )
    if requeued or failed:
        logger.warning("sweep: verification queued again for %s, builds failed: %s", requeued, failed)
    return Swept(requeued=requeued, failed=failed)
