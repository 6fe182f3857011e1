"""What follows a registration: verify (queued or inline), then maybe activate. One policy for every door."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from ..exceptions import BrokerUnavailable
from ..models import ModelVersion
from .activation import version_activate_when_ready
from .deletion import version_delete
from .queueing import version_queue_verify
from .verification import version_verify

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

    from .registration import Registered

INLINE = "inline"
QUEUED = "queued"
Verify = Literal["inline", "queued"] | None


def complete(
    registered: Registered, *, verify: Verify, activate: bool, user: AbstractBaseUser | None
) -> Registered:
    """Verify what a registration returned and activate it when asked and ready.

    A new or unfinished version is verified; a ready one (the same content registered before)
    is not verified again and is activated at once when asked. ``verify=QUEUED`` queues the
    verification once the transaction commits (activation then happens in the task); when the
    broker cannot be reached, a version this registration created is deleted with its file and
    ``BrokerUnavailable`` is raised. ``verify=None`` leaves the version ``pending``.
    """
    if verify not in (None, INLINE, QUEUED):
        raise ValueError(f"verify={verify!r} is not one of None, {INLINE!r}, {QUEUED!r}")
    if activate and verify is None:
        raise ValueError(
            "activate=True needs verify=INLINE or verify=QUEUED: only a ready version is activated"
        )
    version = registered.version
    needs_verifying = version.status in (ModelVersion.Status.PENDING, ModelVersion.Status.FAILED)
    if verify == QUEUED and needs_verifying:
        try:
            version_queue_verify(version=version, activate=activate, user=user)
        except BrokerUnavailable:
            if registered.created:
                version_delete(version=version)
            raise
        return registered
    if verify == INLINE and needs_verifying:
        version = version_verify(version=version)
    if activate:
        version_activate_when_ready(version=version, user=user)
    return registered
