"""Celery doors into the registry services. Tasks take ids and fetch rows again.

With no broker configured they run in-process (``CELERY_TASK_ALWAYS_EAGER``).
"""

import logging

from celery import shared_task
from django.contrib.auth import get_user_model

from . import services
from .bundles import BundleError
from .exceptions import RegistryError
from .models import ModelVersion

logger = logging.getLogger(__name__)


def _user(user_id):
    return get_user_model().objects.filter(pk=user_id).first() if user_id else None


@shared_task(acks_late=True, reject_on_worker_lost=True)
def verify_bundle(version_id, activate=False, user_id=None):
    """Verify a version; activate it when asked and it turned out ready. Return its status."""
    version = ModelVersion.objects.filter(pk=version_id).first()
    if version is None:
        logger.warning("verify_bundle: version %s no longer exists", version_id)
        return None
    version = services.version_verify(version=version)
    if activate and version.status == ModelVersion.Status.READY:
        services.version_activate(version=version, user=_user(user_id))
    return version.status


@shared_task(acks_late=True, reject_on_worker_lost=True)
def build_bundle(version_id, artifacts_path, compress=None, activate=False, user_id=None):
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
            notes=version.notes,
            user=_user(user_id),
            version=version,
        )
    except (BundleError, RegistryError, OSError) as exc:
        logger.warning("build_bundle: version %s failed: %s", version_id, exc)
        return version_id
    verify_bundle(result.version.pk, activate=activate, user_id=user_id)
    return result.version.pk
