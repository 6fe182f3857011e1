"""The registry's rules. Admin, API, Celery tasks and commands all call these functions."""

import errno
import hashlib
import logging
import shutil
import time
import traceback
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import get_valid_filename
from kombu.exceptions import OperationalError as BrokerError

from . import audit, selectors, storage
from .bundles import (
    BundleError,
    IncompatibleBundle,
    Limits,
    content_hash,
    file_sha256,
    load_any,
    open_bundle,
    parse_compression,
    plain_metadata,
    read_artifacts,
    verify_arrays,
    verify_bundle,
    write_bundle,
)
from .exceptions import (
    BrokerUnavailable,
    InsufficientStorage,
    NothingToRollBack,
    RegistryError,
    VersionBusy,
    VersionIsActive,
    VersionNotReady,
)
from .models import ActivationEvent, ModelVersion

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Registered:
    """What a registration did: the version, and whether it is a new row."""

    version: ModelVersion
    created: bool
    seconds: float = 0.0


DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
# What pandas and numpy raise on input they cannot convert (a non-numeric column, a CSV that
# does not parse, a mapping of the wrong shape): the input's fault, refused like a bad bundle.
CONVERSION_ERRORS = (ValueError, TypeError, KeyError, IndexError)


@contextmanager
def _storage_errors():
    """Turn a full disk or quota into ``InsufficientStorage``, letting go of what the error held.

    A traceback keeps every frame's locals alive, memory-mapped arrays of a staged file among
    them; the frames are cleared so that whatever keeps the error (a log handler, an error
    tracker) does not keep the deleted file mapped and its space taken.
    """
    try:
        yield
    except OSError as exc:
        if exc.errno not in DISK_FULL:
            raise
        traceback.clear_frames(exc.__traceback__)
        reason = f"{exc.strerror or 'no space left on device'}"
        raise InsufficientStorage(
            f"the bundle storage is full ({reason}); nothing was stored: free space and try again"
        ) from None


@contextmanager
def _conversion_errors(name):
    """Turn a pandas/numpy conversion error on untrusted input into ``IncompatibleBundle``."""
    try:
        yield
    except CONVERSION_ERRORS as exc:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise IncompatibleBundle(f"{name} could not be converted: {type(exc).__name__}: {text}") from exc


def _default_label(kind, content_sha256):
    return f"{kind}-{timezone.now():%Y%m%d-%H%M%S}-{content_sha256[:6]}"


def bundle_limits():
    """Return the limits for reading an untrusted file, from settings."""
    return Limits(
        max_bytes=settings.HYBRIDREC_MAX_BUNDLE_BYTES,
        max_compression_ratio=settings.HYBRIDREC_MAX_COMPRESSION_RATIO,
    )


def _fields_from_metadata(metadata, counts):
    """Return registry fields: counts computed from the arrays, library versions from metadata."""
    libraries = metadata.get("libraries", {})
    return {
        **{key: counts.get(key, 0) for key in ("n_users", "n_items", "n_recommendations", "n_factors")},
        "joblib_version": libraries.get("joblib") or "",
        "numpy_version": libraries.get("numpy") or "",
        "pandas_version": libraries.get("pandas") or "",
    }


def _existing(kind, content_sha256):
    return ModelVersion.objects.filter(kind=kind, content_sha256=content_sha256).first()


def _register_loaded(loaded, *, source_path, uploaded_sha256, label, notes, user, compress, version=None):
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
        keep_file_as_is = loaded.layout == "native" and compress is None and source_path is not None
        if keep_file_as_is:
            shutil.copyfile(source_path, staged)
            sha256, compression = uploaded_sha256 or file_sha256(staged), loaded.compression
            metadata = {**metadata, "counts": counts}  # what the arrays hold, not what the file says
        else:
            metadata = {k: v for k, v in metadata.items() if k not in ("counts", "content_sha256")}
            written = write_bundle(
                staged, kind=loaded.kind, arrays=loaded.arrays, metadata=metadata, compress=compress
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


def _check_fields(fields):
    """Raise ``RegistryError`` if a row with these fields could not be saved (lengths, choices)."""
    try:
        ModelVersion(**fields).clean_fields(exclude=["file", "sha256", "uploaded_sha256"])
    except ValidationError as exc:
        problems = "; ".join(f"{field}: {' '.join(errors)}" for field, errors in exc.message_dict.items())
        raise RegistryError(f"the version cannot be recorded: {problems}") from exc


def _remove_unused(name):
    """Remove a stored file that no row uses (a registration that failed after storing it)."""
    if name and not ModelVersion.objects.filter(file=name).exists():
        storage.remove(name)


def version_register(*, path, kind=None, label="", notes="", user=None, compress=None, uploaded_sha256=None):
    """Register a bundle file (native or seed layout, plain or compressed) as a pending version.

    The file is read through the allow-list unpickler; a seed-layout bundle is converted to the
    array layout. Registering content that is already registered returns the existing version.
    """
    started = time.perf_counter()
    with _conversion_errors(Path(path).name):
        loaded = load_any(path, limits=bundle_limits())
    if kind and kind != loaded.kind:
        raise IncompatibleBundle(f"{Path(path).name} holds a {loaded.kind} bundle, not {kind}")
    uploaded_sha256 = uploaded_sha256 or file_sha256(path)
    with _storage_errors(), _conversion_errors(Path(path).name):
        result = _register_loaded(
            loaded,
            source_path=path,
            uploaded_sha256=uploaded_sha256,
            label=label,
            notes=notes,
            user=user,
            compress=compress,
        )
    if result.created:
        audit.log_version_action(
            user=user,
            version=result.version,
            flag=audit.ADDITION,
            message=f"Registered from {Path(path).name}.",
        )
    return Registered(result.version, result.created, time.perf_counter() - started)


def version_start_build(*, kind, label="", notes="", user=None):
    """Create the row of a version that a task is about to build (status ``building``)."""
    if kind not in ModelVersion.Kind.values:
        raise RegistryError(f"kind {kind!r} is not one of {', '.join(ModelVersion.Kind.values)}")
    placeholder = label or f"{kind}-building-{timezone.now():%Y%m%d-%H%M%S-%f}"
    return ModelVersion.objects.create(
        kind=kind, label=placeholder, notes=notes, created_by=user, status=ModelVersion.Status.BUILDING
    )


def version_build(*, kind, artifacts_path, compress=None, label="", notes="", user=None, version=None):
    """Build a bundle from a seed-layout artifacts folder and register it (status ``pending``).

    ``version`` is a row made by ``version_start_build``; any failure is recorded on it.
    """
    started = time.perf_counter()
    try:
        with _storage_errors(), _conversion_errors(Path(artifacts_path).name):
            loaded = read_artifacts(artifacts_path, kind, limits=bundle_limits())
            result = _register_loaded(
                loaded,
                source_path=None,
                uploaded_sha256="",
                label=label or _label_of(version),
                notes=notes,
                user=user,
                compress=compress,
                version=version,
            )
    except Exception as exc:
        if version is not None:
            _fail(version, exc if isinstance(exc, (BundleError, RegistryError, OSError)) else _described(exc))
        raise
    return Registered(result.version, result.created, time.perf_counter() - started)


def _label_of(version):
    if version is None or version.label.startswith(f"{version.kind}-building-"):
        return ""
    return version.label


def _described(exc):
    return f"{type(exc).__name__}: {exc}"


def _fail(version, exc):
    version.status = ModelVersion.Status.FAILED
    version.error = str(exc)
    version.status_changed_at = timezone.now()
    version.save(update_fields=["status", "error", "status_changed_at"])


def version_verify(*, version):
    """Verify a stored bundle deeply and mark it ``ready`` or ``failed`` (with the reason).

    Checks the file's sha256 against the registry, the structure, dtypes and shapes, that ids
    are unique and factors finite, that recommendations name known items, and the content hash.
    """
    ModelVersion.objects.filter(pk=version.pk).update(
        status=ModelVersion.Status.VERIFYING, error="", status_changed_at=timezone.now()
    )
    version.refresh_from_db()
    try:
        if not version.file:
            raise IncompatibleBundle("version has no stored file")
        path = storage.local_path(version.file.name, version.sha256)
        bundle = open_bundle(path, expected_sha256=version.sha256, limits=bundle_limits())
        if bundle.kind != version.kind:
            raise IncompatibleBundle(f"file holds a {bundle.kind} bundle, registered as {version.kind}")
        counts = verify_bundle(bundle)
        if version.content_sha256 and bundle.metadata.get("content_sha256") != version.content_sha256:
            raise IncompatibleBundle("file content differs from the content registered for this version")
    except (BundleError, OSError) as exc:
        _fail(version, exc)
        return version
    except Exception as exc:
        # A bug or an input no check foresaw: the row still ends failed, with the reason.
        logger.exception("verifying version %s failed unexpectedly", version.pk)
        _fail(version, _described(exc))
        return version
    version.status = ModelVersion.Status.READY
    version.verified_at = timezone.now()
    version.error = ""
    for key, value in counts.items():
        setattr(version, key, value)
    version.status_changed_at = timezone.now()
    version.save(update_fields=["status", "verified_at", "error", "status_changed_at", *counts])
    return version


@transaction.atomic
def version_activate(*, version, user=None, action=ActivationEvent.Action.ACTIVATE):
    """Make a ready version the active one of its kind, in one transaction, with an audit row."""
    rows = list(ModelVersion.objects.select_for_update().filter(kind=version.kind).order_by("pk"))
    target = next((row for row in rows if row.pk == version.pk), None)
    if target is None:
        raise RegistryError(f"version {version.pk} no longer exists")
    if target.status != ModelVersion.Status.READY:
        raise VersionNotReady(
            f"version {target.label} is {target.status}; only a ready version can be activated"
        )
    current = next((row for row in rows if row.is_active), None)
    if current is not None and current.pk == target.pk:
        return None
    if current is not None:
        ModelVersion.objects.filter(pk=current.pk).update(is_active=False)
    now = timezone.now()
    ModelVersion.objects.filter(pk=target.pk).update(is_active=True, activated_at=now, activated_by=user)
    version.refresh_from_db()
    event = ActivationEvent.objects.create(
        kind=target.kind,
        action=action,
        from_version=current,
        to_version=target,
        from_label=current.label if current else "",
        to_label=target.label,
        user=user,
    )
    was = f" (was {current.label})" if current else ""
    verb = "Rolled back to this version" if action == ActivationEvent.Action.ROLLBACK else "Activated"
    audit.log_version_action(user=user, version=target, flag=audit.CHANGE, message=f"{verb}{was}.")
    return event


def rollback_target(kind):
    """Return the version that was active before the current one, or None."""
    current = ModelVersion.objects.filter(kind=kind, is_active=True).first()
    if current is None:
        return None
    events = ActivationEvent.objects.filter(
        kind=kind, action=ActivationEvent.Action.ACTIVATE, to_version=current, from_version__isnull=False
    )
    event = events.select_related("from_version").first()
    return event.from_version if event else None


@transaction.atomic
def version_rollback(*, kind, user=None):
    """Re-activate the version that was active before the current one of this kind.

    The kind's rows are locked before the target is chosen, so concurrent rollbacks run one
    after the other, each from the state the previous one left.
    """
    list(ModelVersion.objects.select_for_update().filter(kind=kind).order_by("pk"))
    target = rollback_target(kind)
    if target is None:
        raise NothingToRollBack(f"no earlier {kind} version to roll back to")
    if target.status != ModelVersion.Status.READY:
        raise VersionNotReady(f"the previous {kind} version {target.label} is {target.status}")
    return version_activate(version=target, user=user, action=ActivationEvent.Action.ROLLBACK)


@transaction.atomic
def version_quarantine(*, version, reason, fallback=None):
    """Mark a version whose stored file changed or vanished ``failed``; if it was active, roll back.

    The kind goes back to ``fallback`` when given and ready, else to the most recently active
    ready version (``selectors.last_good_versions``), as an activation by the system that
    records ``reason``. Return the audit row, or None when the version was not active (or was
    already withdrawn by another process). Safe to call from many processes at once.
    """
    rows = list(ModelVersion.objects.select_for_update().filter(kind=version.kind).order_by("pk"))
    bad = next((row for row in rows if row.pk == version.pk), None)
    if bad is None:
        return None
    was_active = bad.is_active
    if bad.status == ModelVersion.Status.FAILED and not was_active:
        return None
    ModelVersion.objects.filter(pk=bad.pk).update(
        status=ModelVersion.Status.FAILED, error=reason, is_active=False
    )
    if not was_active:
        return None
    ready = {row.pk: row for row in rows if row.pk != bad.pk and row.status == ModelVersion.Status.READY}
    target = ready.get(getattr(fallback, "pk", fallback))
    if target is None:
        target = next((row for row in selectors.last_good_versions(bad.kind, exclude=bad.pk)), None)
    if target is not None:
        ModelVersion.objects.filter(pk=target.pk).update(
            is_active=True, activated_at=timezone.now(), activated_by=None
        )
    logger.warning(
        "withdrew %s %s (%s); %s",
        bad.kind,
        bad.label,
        reason,
        f"serving {target.label}" if target else "nothing to roll back to",
    )
    return ActivationEvent.objects.create(
        kind=bad.kind,
        action=ActivationEvent.Action.QUARANTINE,
        from_version=bad,
        to_version=target,
        from_label=bad.label,
        to_label=target.label if target else "",
        reason=reason,
    )


def version_delete(*, version):
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


def version_upload(*, uploaded_file, kind=None, label="", notes="", user=None):
    """Register an uploaded file: stream it to a staging file while hashing, then register.

    The staging file keeps the uploaded file's name, so errors name the file the person knows.
    Refused files (too large, unsafe, corrupt, wrong kind) leave no file and no row behind.
    The caller queues verification (``version_queue_verify``).
    """
    limit = settings.HYBRIDREC_MAX_UPLOAD_BYTES
    if uploaded_file.size is not None and uploaded_file.size > limit:
        raise RegistryError(
            f"the file is {uploaded_file.size:,} bytes, over the upload limit of {limit:,} bytes "
            "(HYBRIDREC_MAX_UPLOAD_BYTES)"
        )
    with _storage_errors(), storage.staging_folder() as folder:
        staged = folder / staged_name(uploaded_file.name)
        digest = hashlib.sha256()
        written = 0
        with open(staged, "wb") as out:
            for chunk in uploaded_file.chunks():
                written += len(chunk)
                if written > limit:
                    raise RegistryError(
                        f"the file is over the upload limit of {limit:,} bytes (HYBRIDREC_MAX_UPLOAD_BYTES)"
                    )
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
        )


def staged_name(uploaded_name, *, max_bytes=120):
    """Return a safe local file name for an upload, shortened to ``max_bytes`` keeping its extension."""
    name = get_valid_filename(Path(uploaded_name or "upload").name) or "upload"
    if len(name.encode()) <= max_bytes:
        return name
    stem, dot, extension = name.partition(".")
    extension = f".{extension}"[: max_bytes // 2] if dot else ""
    budget = max_bytes - len(extension.encode())
    stem = stem.encode()[:budget].decode(errors="ignore") or "upload"
    return stem + extension


def task_queue(task, *args, **kwargs):
    """Queue a task now; raise ``BrokerUnavailable`` when the broker cannot be reached."""
    try:
        task.delay(*args, **kwargs)
    except BrokerError as exc:
        raise BrokerUnavailable(f"the task queue cannot be reached ({exc}); nothing was queued") from exc


def version_queue_verify(*, version, activate=False, user=None):
    """Queue verification of a version once the current transaction commits.

    A version still being built is refused (``VersionBusy``): verifying it would fail it and
    cancel the build. When the broker cannot be reached, ``BrokerUnavailable`` is raised.
    """
    from .tasks import verify_bundle

    if ModelVersion.objects.filter(pk=version.pk, status=ModelVersion.Status.BUILDING).exists():
        raise VersionBusy(f"version {version.label} is still being built; verify it once it is built")
    user_id = getattr(user, "pk", None)
    requested_at = timezone.now().isoformat()
    transaction.on_commit(
        lambda: task_queue(
            verify_bundle, version.pk, activate=activate, user_id=user_id, requested_at=requested_at
        )
    )


def version_queue_registered(*, registered, activate=False, user=None):
    """Queue verification (and activation when asked) of what an upload registered.

    A new or unfinished version is verified; a ready one is activated at once when asked.
    When the broker cannot be reached, a version this upload created is deleted with its file
    (nothing would ever verify it) and ``BrokerUnavailable`` is raised; an older row stays.
    """
    version = registered.version
    try:
        if registered.created or version.status in (ModelVersion.Status.PENDING, ModelVersion.Status.FAILED):
            version_queue_verify(version=version, activate=activate, user=user)
        elif activate and version.status == ModelVersion.Status.READY:
            version_activate(version=version, user=user)
    except BrokerUnavailable:
        if registered.created:
            version_delete(version=version)
        raise


def version_queue_build(
    *, kind, artifacts_path, compress=None, label="", notes="", activate=False, user=None
):
    """Create a ``building`` row and queue its build once the current transaction commits."""
    from .tasks import build_bundle

    parse_compression(compress)
    version = version_start_build(kind=kind, label=label, notes=notes, user=user)
    audit.log_version_action(
        user=user,
        version=version,
        flag=audit.ADDITION,
        message=f"Build queued from {Path(artifacts_path).name}.",
    )
    user_id = getattr(user, "pk", None)

    def send():
        try:
            task_queue(
                build_bundle, version.pk, str(artifacts_path), compress, activate=activate, user_id=user_id
            )
        except BrokerUnavailable:
            version.delete()  # nothing will ever build it
            raise

    transaction.on_commit(send)
    return version


def version_record_metrics(*, version, metrics):
    """Store offline evaluation results on a version (replacing earlier ones)."""
    ModelVersion.objects.filter(pk=version.pk).update(metrics=metrics)
    version.metrics = metrics
    return version


def version_fail_builds(*, version_ids, error):
    """Mark versions that are still ``building`` as failed with the reason; return how many."""
    return ModelVersion.objects.filter(
        pk__in=[pk for pk in version_ids if pk], status=ModelVersion.Status.BUILDING
    ).update(status=ModelVersion.Status.FAILED, error=str(error), status_changed_at=timezone.now())


@dataclass(frozen=True)
class Swept:
    """What a sweep did: ids queued for verification again, and ids marked failed."""

    requeued: list
    failed: list


def version_sweep_stuck(*, now=None):
    """Queue again versions stuck ``pending`` or ``verifying``; fail builds that can no longer finish.

    A version whose status has not changed for ``HYBRIDREC_STUCK_VERIFY_SECONDS`` lost its
    worker or its message: it is verified again (idempotent; a slow verification still running
    only does the work twice). A ``building`` row older than ``HYBRIDREC_STUCK_BUILD_SECONDS``
    is marked failed with the reason. Each row is claimed with a conditional update, so two
    sweeps at once queue it once. When the broker is down nothing is claimed.
    """
    from .tasks import verify_bundle

    now = now or timezone.now()
    verify_before = now - timedelta(seconds=settings.HYBRIDREC_STUCK_VERIFY_SECONDS)
    build_before = now - timedelta(seconds=settings.HYBRIDREC_STUCK_BUILD_SECONDS)
    requeued = []
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
