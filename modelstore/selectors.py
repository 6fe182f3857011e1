"""Reads of the registry. Admin, API, commands and serving read rows only through these."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.contrib.auth import get_user_model
from django.db.models import OuterRef, QuerySet, Subquery

from .bundles import parse_compression
from .exceptions import AmbiguousLabel, VersionNotFound
from .models import ActivationEvent, ModelVersion

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

# A version in one of these statuses changes by itself soon (a worker is on it).
BUSY_STATUSES = (ModelVersion.Status.PENDING, ModelVersion.Status.BUILDING, ModelVersion.Status.VERIFYING)
# The largest primary key a database integer column holds.
MAX_ID = 2**63 - 1


def active_version(kind: str) -> ModelVersion | None:
    """Return the active version of a kind, or None."""
    return ModelVersion.objects.filter(kind=kind, is_active=True).first()


def active_versions_signature() -> dict[str, tuple[int, str]]:
    """Return ``{kind: (id, sha256)}`` of the active versions: one cheap query."""
    rows = ModelVersion.objects.filter(is_active=True).values_list("kind", "id", "sha256")
    return {kind: (pk, sha256) for kind, pk, sha256 in rows}


def serving_signature() -> dict[str, tuple[int, str, dict[str, str] | None]]:
    """Return ``{kind: (id, sha256, withdrawn)}`` of the active versions in one query.

    ``withdrawn`` is ``{"label", "reason"}`` when the kind's latest switch was the system
    withdrawing a faulty version (``version_quarantine``), else None.
    """
    latest = ActivationEvent.objects.filter(kind=OuterRef("kind")).order_by("-created_at", "-id")
    rows = (
        ModelVersion.objects.filter(is_active=True)
        .annotate(
            last_action=Subquery(latest.values("action")[:1]),
            last_from=Subquery(latest.values("from_label")[:1]),
            last_reason=Subquery(latest.values("reason")[:1]),
        )
        .values_list("kind", "id", "sha256", "last_action", "last_from", "last_reason")
    )
    return {
        kind: (
            pk,
            sha256,
            {"label": label, "reason": reason} if action == ActivationEvent.Action.QUARANTINE else None,
        )
        for kind, pk, sha256, action, label, reason in rows
    }


def last_good_versions(kind: str, *, exclude: int | None = None) -> QuerySet[ModelVersion]:
    """Return ready versions of a kind that were active before, the most recently active first."""
    versions = ModelVersion.objects.filter(
        kind=kind, status=ModelVersion.Status.READY, activated_at__isnull=False
    ).order_by("-activated_at", "-id")
    return versions.exclude(pk=exclude) if exclude else versions


def version_list(*, kind: str | None = None) -> QuerySet[ModelVersion]:
    """Return versions newest first, optionally of one kind."""
    versions = ModelVersion.objects.select_related("created_by", "activated_by")
    return versions.filter(kind=kind) if kind else versions


def version_get(ref: object, *, kind: str | None = None) -> ModelVersion:
    """Return the version whose id or label is ``ref`` (of ``kind``, when given).

    Raise ``VersionNotFound``, or ``AmbiguousLabel`` when a label names a CF and a CB version
    and no ``kind`` says which. Only ASCII digits count as an id; an id too large for the
    database is simply not found.
    """
    text = str(ref)
    versions = ModelVersion.objects.select_related("created_by", "activated_by")
    if text.isascii() and text.isdigit() and int(text) <= MAX_ID:
        found = versions.filter(pk=int(text)).first()
        if found is not None:
            return found
    named = list(versions.filter(label=text, **({"kind": kind} if kind else {}))[:2])
    if not named:
        raise VersionNotFound(f"no model version with id or label {text!r}")
    if len(named) > 1:
        raise AmbiguousLabel(f"label {text!r} names a CF and a CB version; use the id")
    return named[0]


def rollback_target(kind: str) -> ModelVersion | None:
    """Return the version that was active before the current one, or None."""
    current = ModelVersion.objects.filter(kind=kind, is_active=True).first()
    if current is None:
        return None
    events = ActivationEvent.objects.filter(
        kind=kind, action=ActivationEvent.Action.ACTIVATE, to_version=current, from_version__isnull=False
    )
    event = events.select_related("from_version").first()
    return event.from_version if event else None


def any_version_busy() -> bool:
    """Return True if some version is pending, being built or being verified."""
    return ModelVersion.objects.filter(status__in=BUSY_STATUSES).exists()


def user_by_id(user_id: int | None) -> AbstractBaseUser | None:
    """Return the user a task was queued for, or None (no id, or the user is gone)."""
    return get_user_model().objects.filter(pk=user_id).first() if user_id else None


def version_as_dict(version: ModelVersion) -> dict[str, Any]:
    """Return the public description of a version (``list_models --json`` and the API)."""
    return {
        "id": version.pk,
        "label": version.label,
        "kind": version.kind,
        "status": version.status,
        "is_active": version.is_active,
        "sha256": version.sha256,
        "uploaded_sha256": version.uploaded_sha256,
        "content_sha256": version.content_sha256,
        "size_bytes": version.size_bytes,
        "compression": version.compression or None,
        "format_version": version.format_version,
        "source_layout": version.source_layout,
        "n_users": version.n_users,
        "n_items": version.n_items,
        "n_recommendations": version.n_recommendations,
        "n_factors": version.n_factors,
        "libraries": {
            "joblib": version.joblib_version,
            "numpy": version.numpy_version,
            "pandas": version.pandas_version,
        },
        "metrics": version.metrics,
        "error": version.error,
        "notes": version.notes,
        "created_at": version.created_at.isoformat() if version.created_at else None,
        "created_by": version.created_by.get_username() if version.created_by else None,
        "verified_at": version.verified_at.isoformat() if version.verified_at else None,
        "activated_at": version.activated_at.isoformat() if version.activated_at else None,
        "activated_by": version.activated_by.get_username() if version.activated_by else None,
    }


def version_file(version_id: int) -> Mapping[str, Any] | None:
    """Return ``{"id", "label", "file", "sha256"}`` of a version, or None when it is gone (serving)."""
    return ModelVersion.objects.filter(pk=version_id).values("id", "label", "file", "sha256").first()


def version_unapplied_options(
    version: ModelVersion, *, label: str = "", notes: str = "", compress: str | None = None
) -> dict[str, str]:
    """Return ``{option: why}`` for the options an upload gave that did nothing.

    When the same content was registered before, the existing version keeps its label, notes
    and stored file: each door says so instead of answering as if they were applied.
    """
    unapplied = {}
    if label and label != version.label:
        unapplied["label"] = f"not applied; the same content is registered as {version.label}"
    if notes and notes != version.notes:
        unapplied["notes"] = f"not applied; the version registered as {version.label} keeps its notes"
    if compress is not None and parse_compression(compress)[0] != (version.compression or None):
        stored = version.compression or "uncompressed"
        unapplied["compress"] = f"not applied; the registered file is {stored}"
    return unapplied


def kind_activated_since(kind: str, when: datetime) -> bool:
    """Return True when a version of ``kind`` was activated (or rolled back to) after ``when``."""
    return ActivationEvent.objects.filter(kind=kind, created_at__gt=when).exists()
