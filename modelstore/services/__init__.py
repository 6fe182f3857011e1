"""The registry's rules, one module per concern. Admin, API, Celery tasks and commands call these.

Import the package (``from modelstore import services``) and call ``services.version_…``:
the names below are its public interface, wherever they live inside.
"""

from .activation import (
    version_activate,
    version_activate_when_ready,
    version_activation_refusal,
    version_quarantine,
    version_rollback,
)
from .building import version_build, version_fail_builds, version_start_build
from .completion import INLINE, QUEUED, Verify
from .deletion import version_delete, version_deletion_refusal
from .failures import failing
from .locking import lock_kind
from .queueing import Swept, task_queue, version_queue_build, version_queue_verify, version_sweep_stuck
from .registration import Registered, staged_name, version_register, version_upload
from .verification import bundle_limits, version_record_metrics, version_verify

__all__ = [
    "INLINE",
    "QUEUED",
    "Registered",
    "Swept",
    "Verify",
    "bundle_limits",
    "failing",
    "lock_kind",
    "staged_name",
    "task_queue",
    "version_activate",
    "version_activate_when_ready",
    "version_activation_refusal",
    "version_build",
    "version_delete",
    "version_deletion_refusal",
    "version_fail_builds",
    "version_queue_build",
    "version_queue_verify",
    "version_quarantine",
    "version_record_metrics",
    "version_register",
    "version_rollback",
    "version_start_build",
    "version_sweep_stuck",
    "version_upload",
    "version_verify",
]
