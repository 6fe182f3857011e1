"""Delete a version that is not active."""

from __future__ import annotations

from django.db import transaction

from .. import storage
from ..exceptions import VersionIsActive
from ..models import ModelVersion


def version_deletion_refusal(version: ModelVersion) -> VersionIsActive | None:
    """Return why ``version`` cannot be deleted (the rule every door reads), or None."""
    if version.is_active:
        return VersionIsActive(
            f"“{version.label}” is the active {version.kind} version and cannot be deleted; "
            "activate another version first"
        )
    return None


def version_delete(*, version: ModelVersion) -> None:
    """Delete a version that is not active; its file goes only when no other row uses it."""
    with transaction.atomic():
        version = ModelVersion.objects.select_for_update().get(pk=version.pk)
        refusal = version_deletion_refusal(version)
        if refusal is not None:
            raise refusal
        name = version.file.name
        version.delete()
        still_used = bool(name) and ModelVersion.objects.filter(file=name).exists()
    if name and not still_used:
        storage.remove(name)
