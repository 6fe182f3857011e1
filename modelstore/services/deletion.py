"""Delete a version that is not active."""

from __future__ import annotations

from django.db import transaction

from .. import storage
from ..exceptions import VersionIsActive
from ..models import ModelVersion


def version_delete(*, version: ModelVersion) -> None:
    """Delete a version that is not active; its file goes only when no other row uses it."""
    with transaction.atomic():
        version = ModelVersion.objects.select_for_update().get(pk=version.pk)
        if version.is_active:
            raise VersionIsActive(f"version {version.label} is active; activate another one first")
        name = version.file.name
        version.delete()
        still_used = bool(name) and ModelVersion.objects.filter(file=name).exists()
    if name and not still_used:
        storage.remove(name)
