"""Verify a stored bundle deeply; record offline metrics on a version."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.utils import timezone

from .. import storage
from ..bundles import IncompatibleBundle, Limits, open_bundle, verify_bundle
from ..bundles.stamps import file_identity, record_verified
from ..models import ModelVersion
from .failures import failing


def bundle_limits() -> Limits:
    """Return the limits for reading an untrusted file, from settings."""
    return Limits(
        max_bytes=settings.HYBRIDREC_MAX_BUNDLE_BYTES,
        max_compression_ratio=settings.HYBRIDREC_MAX_COMPRESSION_RATIO,
    )


def version_verify(*, version: ModelVersion) -> ModelVersion:
    """Verify a stored bundle deeply and mark it ``ready`` or ``failed`` (with the reason).

    Checks the file's sha256 against the registry, the structure, dtypes and shapes, that ids
    are unique and factors finite, that recommendations name known items, and the content hash.
    """
    ModelVersion.objects.filter(pk=version.pk).update(
        status=ModelVersion.Status.VERIFYING, error="", status_changed_at=timezone.now()
    )
    version.refresh_from_db()
    try:
        with failing(version):
            counts = _verified_counts(version)
    except Exception:  # recorded on the row: a failed verification is an answer, not an error
        return version
    version.status = ModelVersion.Status.READY
    version.verified_at = timezone.now()
    version.error = ""
    for key, value in counts.items():
        setattr(version, key, value)
    version.status_changed_at = timezone.now()
    version.save(update_fields=["status", "verified_at", "error", "status_changed_at", *counts])
    return version


def _verified_counts(version: ModelVersion) -> dict[str, int]:
    """Open the stored file, check it against the row, and return the counts its arrays hold."""
    if not version.file:
        raise IncompatibleBundle("version has no stored file")
    if storage.is_remote():  # a bad copy in this node's cache is replaced, not held against the version
        storage.verified_path(
            version.file.name, version.sha256, stamp_dir=settings.HYBRIDREC_BUNDLE_CACHE_DIR
        )
    path = storage.local_path(version.file.name, version.sha256)
    identity = file_identity(path)
    bundle = open_bundle(path, expected_sha256=version.sha256, limits=bundle_limits())
    if bundle.kind != version.kind:
        raise IncompatibleBundle(f"file holds a {bundle.kind} bundle, registered as {version.kind}")
    counts = verify_bundle(bundle)
    if version.content_sha256 and bundle.metadata.get("content_sha256") != version.content_sha256:
        raise IncompatibleBundle("file content differs from the content registered for this version")
    # The file was hashed whole: serving on this machine trusts it without reading it again.
    record_verified(path, version.sha256, stamp_dir=settings.HYBRIDREC_BUNDLE_CACHE_DIR, identity=identity)
    return counts


def version_record_metrics(*, version: ModelVersion, metrics: dict[str, Any]) -> ModelVersion:
    """Store offline evaluation results on a version (replacing earlier ones)."""
    ModelVersion.objects.filter(pk=version.pk).update(metrics=metrics)
    version.metrics = metrics
    return version
