"""Register a bundle file or an upload, then verify it and maybe activate it (one use case)."""

from __future__ import annotations

import hashlib
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import get_valid_filename

from .. import audit, storage
from ..bundles import (
    IncompatibleBundle,
    LoadedFile,
    content_hash,
    file_sha256,
    load_any,
    plain_metadata,
    verify_arrays,
    write_bundle,
)
from ..exceptions import RegistryError
from ..models import ModelVersion
from ..upload import over_limit_message
from .failures import conversion_errors, storage_errors
from .verification import bundle_limits

if TYPE_CHECKING:
    from os import PathLike

    from django.contrib.auth.models import AbstractBaseUser
    from django.core.files.uploadedfile import UploadedFile

    from .completion import Verify


@dataclass(frozen=True)
class Registered:
    """What a registration did: the version, and whether it is a new row."""

    version: ModelVersion
    created: bool
    seconds: float = 0.0


def _default_label(kind: str, content_sha256: str) -> str:
    return f"{kind}-{timezone.now():%Y%m%d-%H%M%S}-{content_sha256[:6]}"


def _fields_from_metadata(metadata: dict[str, Any], counts: dict[str, int]) -> dict[str, Any]:
    """Return registry fields: counts computed from the arrays, library versions from metadata."""
    libraries = metadata.get("libraries", {})
    return {
        **{key: counts.get(key, 0) for key in ("n_users", "n_items", "n_recommendations", "n_factors")},
        "joblib_version": libraries.get("joblib") or "",
        "numpy_version": libraries.get("numpy") or "",
        "pandas_version": libraries.get("pandas") or "",
    }


def _existing(kind: str, content_sha256: str) -> ModelVersion | None:
    return ModelVersion.objects.filter(kind=kind, content_sha256=content_sha256).first()


def register_loaded(
    loaded: LoadedFile,
    *,
    source_path: str | PathLike[str] | None,
    uploaded_sha256: str,
    label: str,
    notes: str,
    user: AbstractBaseUser | None,
    compress: str | None,
    version: ModelVersion | None = None,
) -> Registered:
    """Store a loaded array set as a bundle and record (or reuse) its registry row.

    Everything is checked before the file is stored; if the row still cannot be written,
    the stored file is removed again unless another row uses it.
    """
    counts = verify_arrays(loaded.kind, loaded.arrays)
    metadata = plain_metadata(loaded.metadata)
    digest = content_hash(loaded.arrays)
    existing = _existing(loaded.kind, digest)
    if existing is not None:
        if version is not None and version.pk != existing.pk:
            version.delete()
        return Registered(existing, created=False)
    if (
        label
        and ModelVersion.objects.filter(kind=loaded.kind, label=label)
        .exclude(pk=getattr(version, "pk", None))
        .exists()
    ):
        raise RegistryError(f"a {loaded.kind} version labelled {label!r} already exists")
    fields = {
        "kind": loaded.kind,
        "label": label or _default_label(loaded.kind, digest),
        "notes": notes,
        "content_sha256": digest,
        "format_version": 1,
        "source_layout": loaded.layout,
        "status": ModelVersion.Status.PENDING,
        "error": "",
        **_fields_from_metadata(metadata, counts),
    }
    _check_fields(fields)

    staged = storage.staging_file()
    try:
        if source_path is not None and loaded.layout == "native" and compress is None:  # keep it as is
            shutil.copyfile(source_path, staged)
            sha256, compression = uploaded_sha256 or file_sha256(staged), loaded.compression
            metadata = {**metadata, "counts": counts}  # what the arrays hold, not what the file says
        else:
            metadata = {k: v for k, v in metadata.items() if k not in ("counts", "content_sha256")}
            written = write_bundle(
                staged,
                kind=loaded.kind,
                arrays=loaded.arrays,
                metadata=metadata,
                compress=compress,
                content_sha256=digest,
            )
            sha256, metadata, compression = written.sha256, written.metadata, written.compression
        name = storage.store(staged, sha256)
    finally:
        staged.unlink(missing_ok=True)

    fields.update(
        file=name,
        sha256=sha256,
        uploaded_sha256=uploaded_sha256 or sha256,
        size_bytes=storage.default_storage.size(name),
        compression=compression or "",
        metadata=metadata,
        status_changed_at=timezone.now(),
        **_fields_from_metadata(metadata, counts),
    )
    try:
        with transaction.atomic():
            if version is None:
                version = ModelVersion.objects.create(created_by=user, **fields)
            else:
                for key, value in fields.items():
                    setattr(version, key, value)
                version.save()
    except IntegrityError:
        _remove_unused(name)
        # Another worker registered the same content a moment ago: same content, same row.
        existing = _existing(loaded.kind, digest)
        if existing is None:
            raise
        return Registered(existing, created=False)
    except BaseException:
        _remove_unused(name)
        raise
    return Registered(version, created=True)


def _check_fields(fields: dict[str, Any]) -> None:
    """Raise ``RegistryError`` if a row with these fields could not be saved (lengths, choices)."""
    try:
        ModelVersion(**fields).clean_fields(exclude=["file", "sha256", "uploaded_sha256"])
    except ValidationError as exc:
        problems = "; ".join(f"{field}: {' '.join(errors)}" for field, errors in exc.message_dict.items())
        raise RegistryError(f"the version cannot be recorded: {problems}") from exc


def _remove_unused(name: str) -> None:
    """Remove a stored file that no row uses (a registration that failed after storing it)."""
    if name and not ModelVersion.objects.filter(file=name).exists():
        storage.remove(name)


def version_register(
    *,
    path: str | PathLike[str],
    kind: str | None = None,
    label: str = "",
    notes: str = "",
    user: AbstractBaseUser | None = None,
    compress: str | None = None,
    uploaded_sha256: str | None = None,
    verify: Verify = None,
    activate: bool = False,
) -> Registered:
    """Register a bundle file (native or seed layout, plain or compressed), then verify and activate.

    The file is read through the allow-list unpickler; a seed-layout bundle is converted to the
    array layout. Registering content that is already registered returns the existing version.
    ``verify`` is ``None`` (leave it ``pending``), ``INLINE`` (verify now) or ``QUEUED`` (a task
    verifies it after the transaction commits); ``activate`` makes it active once it is ready.
    """
    from .completion import complete

    started = time.perf_counter()
    name = Path(path).name
    with conversion_errors(name):
        loaded = load_any(path, limits=bundle_limits())
    if kind and kind != loaded.kind:
        raise IncompatibleBundle(f"{name} holds a {loaded.kind} bundle, not {kind}")
    uploaded_sha256 = uploaded_sha256 or file_sha256(path)
    with storage_errors(), conversion_errors(name):
        result = register_loaded(
            loaded,
            source_path=path,
            uploaded_sha256=uploaded_sha256,
            label=label,
            notes=notes,
            user=user,
            compress=compress,
        )
    del loaded  # the converted arrays are stored: free them before verification maps the file
    if result.created:
        audit.log_version_action(
            user=user, version=result.version, flag=audit.ADDITION, message=f"Registered from {name}."
        )
    result = complete(result, verify=verify, activate=activate, user=user)
    return Registered(result.version, result.created, time.perf_counter() - started)


def version_upload(
    *,
    uploaded_file: UploadedFile,
    kind: str | None = None,
    label: str = "",
    notes: str = "",
    user: AbstractBaseUser | None = None,
    verify: Verify = None,
    activate: bool = False,
) -> Registered:
    """Register an uploaded file: stream it to a staging file while hashing, then register.

    The staging file keeps the uploaded file's name, so errors name the file the person knows.
    Refused files (too large, unsafe, corrupt, wrong kind) leave no file and no row behind.
    ``verify`` and ``activate`` are as for ``version_register``.
    """
    limit = settings.HYBRIDREC_MAX_UPLOAD_BYTES
    if uploaded_file.size is not None and uploaded_file.size > limit:
        raise RegistryError(over_limit_message(f"the file is {uploaded_file.size:,} bytes,"))
    with storage_errors(), storage.staging_folder() as folder:
        staged = folder / staged_name(uploaded_file.name)
        digest = hashlib.sha256()
        written = 0
        with open(staged, "wb") as out:
            for chunk in uploaded_file.chunks():
                written += len(chunk)
                if written > limit:
                    raise RegistryError(over_limit_message("the file is"))
                digest.update(chunk)
                out.write(chunk)
        if written == 0:
            raise IncompatibleBundle(f"{staged.name} is empty")
        return version_register(
            path=staged,
            kind=kind or None,
            label=label,
            notes=notes,
            user=user,
            uploaded_sha256=digest.hexdigest(),
            verify=verify,
            activate=activate,
        )


def staged_name(uploaded_name: str | None, *, max_bytes: int = 120) -> str:
    """Return a safe local file name for an upload, shortened to ``max_bytes`` keeping its extension."""
    name = get_valid_filename(Path(uploaded_name or "upload").name) or "upload"
    if len(name.encode()) <= max_bytes:
        return name
    stem, dot, extension = name.partition(".")
    extension = f".{extension}"[: max_bytes // 2] if dot else ""
    budget = max_bytes - len(extension.encode())
    stem = stem.encode()[:budget].decode(errors="ignore") or "upload"
    return stem + extension
