"""Celery doors into the registry services. Tasks take ids and fetch rows again.

With no broker configured they run in-process (``CELERY_TASK_ALWAYS_EAGER``). Tasks are
acknowledged late: a worker that dies mid-task leaves its message to be delivered again
(at once when only a pool process died, after ``HYBRIDREC_TASK_VISIBILITY_SECONDS`` when the
whole worker did). ``sweep_stuck_versions`` runs when a worker starts and from Celery beat.
"""

import logging

from celery import shared_task
from celery.signals import worker_ready
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from . import selectors, services
from .bundles import BundleError
from .exceptions import RegistryError
from .models import ModelVersion

logger = logging.getLogger(__name__)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def verify_bundle(version_id, activate=False, user_id=None, requested_at=None):
    """Verify a version; activate it when asked and it turned out ready. Return its status.

    A late delivery (a lost worker's message coming back) does not undo a newer decision: the
    activation is skipped when another version of the kind was activated since it was asked for.
    """
    version = ModelVersion.objects.filter(pk=version_id).first()
    if version is None:
        logger.warning("verify_bundle: version %s no longer exists", version_id)
        return None
    version = services.version_verify(version=version)
    if activate:
        asked_at = parse_datetime(requested_at) if requested_at else None
        try:
            services.version_activate_when_ready(
                version=version, user=selectors.user_by_id(user_id), asked_at=asked_at
            )
        except RegistryError as exc:  # a rule refused (an experiment runs): the version stays ready
            logger.warning("verify_bundle: not activating %s: %s", version.label, exc)
    return version.status


@shared_task(acks_late=True, reject_on_worker_lost=True)
def build_bundle(
    version_id, artifacts_path, compress=None, activate=False, user_id=None, factors_dtype="float32"
):
    """Build the version made by ``version_start_build`` from an artifacts folder, then verify it.

    Return the id of the resulting version (an existing one when the content was registered
    before). Failures are recorded on the row.
    """
    version = ModelVersion.objects.filter(pk=version_id).first()
    if version is None:
        logger.warning("build_bundle: version %s no longer exists", version_id)
        return None
    if version.status != ModelVersion.Status.BUILDING:
        return version.pk  # already built by an earlier delivery of this task
    try:
        result = services.version_build(
            kind=version.kind,
            artifacts_path=artifacts_path,
            compress=compress,
            factors_dtype=factors_dtype,
            notes=version.notes,
            user=selectors.user_by_id(user_id),
            version=version,
            verify=services.INLINE,
            activate=activate,
        )
    except (BundleError, RegistryError, OSError) as exc:
        logger.warning("build_bundle: version %s failed: %s", version_id, exc)
        return version_id
    return result.version.pk


@shared_task
def sweep_stuck_versions():
    """Queue again versions stuck pending or verifying; fail builds that can no longer finish."""
    swept = services.version_sweep_stuck(now=timezone.now())
    return {"requeued": swept.requeued, "failed": swept.failed}


@worker_ready.connect
def sweep_at_worker_start(sender=None, **kwargs):
    """Sweep once as soon as a worker is ready: what a dead worker left is picked up now."""
    try:
        sweep_stuck_versions.delay()
    except Exception:  # the worker must start even if the sweep cannot be queued
        logger.exception("sweep at worker start could not be queued")
