"""Train CF and CB models from uploaded files and register their bundles: a Celery task and its queueing.

``training_queue`` (the admin's training page calls it) stores the uploads in the bundle
storage under ``training/`` (``MEDIA_ROOT`` or the bucket), creates ``building`` rows for the versions to come and queues
``train_and_build`` once the transaction commits. The task takes those ids and paths,
trains with ``pipeline.train_models`` into a folder under the first of
``HYBRIDREC_ARTIFACT_ROOTS``, then builds, verifies (and, when asked, activates) the
bundles through ``modelstore.services``; a worker on another machine reads the uploads from
storage. A ``TrainingRun`` row records its state, stage and
the versions it ended with. With no broker configured the task runs in a background thread
of this process (with its own database connection), so the page that queued it answers at
once; with a broker a Celery worker runs it.
"""

import logging
import threading
import uuid
from contextlib import ExitStack, contextmanager
from dataclasses import asdict
from pathlib import Path

from celery import shared_task
from django.conf import settings
from django.db import OperationalError, connections, transaction
from django.utils import timezone

from modelstore import selectors, services, storage
from modelstore.bundles import BundleError
from modelstore.exceptions import BrokerUnavailable, RegistryError
from modelstore.models import ModelVersion

from .exceptions import TrainingError, one_line
from .models import TrainingRun
from .options import TrainingOptions

logger = logging.getLogger(__name__)

UPLOAD_FOLDER = "training"
RUN_FOLDER = "training"


def run_folder(cf_version_id):
    """Return the artifacts folder of the training run that builds CF version ``cf_version_id``."""
    roots = settings.HYBRIDREC_ARTIFACT_ROOTS
    if not roots:
        raise TrainingError("No artifact root to train into (HYBRIDREC_ARTIFACT_ROOTS is empty).")
    return Path(roots[0]) / RUN_FOLDER / f"run-{cf_version_id}"


def training_queue(
    *,
    interactions_file,
    items_file=None,
    options: TrainingOptions | None = None,
    activate: bool = False,
    notes: str = "",
    user=None,
) -> TrainingRun:
    """Store the uploaded files, create the ``building`` rows and a queued run; start it once the transaction commits.

    A CB version is built when there are item texts: an items file, or the Online Retail
    format (its descriptions). Return the ``TrainingRun``.
    """
    options = options or TrainingOptions()
    folder = f"{UPLOAD_FOLDER}/{uuid.uuid4().hex}"
    try:
        interactions_path = _store_upload(interactions_file, folder, "interactions")
        items_path = _store_upload(items_file, folder, "items") if items_file else None
        source = interactions_file.name + (f" and {items_file.name}" if items_file else "")
        note = f"Trained from {source} ({options.describe()})."
        notes = f"{notes}\n{note}".strip() if notes else note
        cf_version = services.version_start_build(kind="cf", notes=notes, user=user)
        with_cb = items_path is not None or options.data_format == "online-retail"
        cb_version = services.version_start_build(kind="cb", notes=notes, user=user) if with_cb else None
        run = TrainingRun.objects.create(
            source=source[:255],
            cf_version=cf_version,
            cb_version=cb_version,
            steps=len(_steps(with_cb=with_cb, with_split=options.split_date is not None)),
            created_by=user if getattr(user, "pk", None) else None,
        )
    except BaseException:
        storage.remove_folder(folder)
        raise
    arguments = {
        "cb_version_id": cb_version.pk if cb_version else None,
        "items_path": str(items_path) if items_path else None,
        **asdict(options),
        "activate": bool(activate),
        "user_id": getattr(user, "pk", None),
        "run_id": run.pk,
    }

    def send():
        try:
            start_task(train_and_build, cf_version.pk, str(interactions_path), **arguments)
        except BrokerUnavailable:
            # Nothing would ever train them: no rows, no files left behind.
            ModelVersion.objects.filter(pk__in=[v.pk for v in (cf_version, cb_version) if v]).delete()
            TrainingRun.objects.filter(pk=run.pk).delete()
            storage.remove_folder(folder)
            raise

    transaction.on_commit(send)
    return run


def start_task(task, *args, **kwargs):
    """Send ``task`` to the broker, or with none configured run it in a background thread.

    The thread gets its own database connections and closes them when the task ends.
    Return the thread, or None when the task went to a broker.
    """
    if not settings.CELERY_TASK_ALWAYS_EAGER:
        services.task_queue(task, *args, **kwargs)
        return None
    thread = threading.Thread(
        target=_run_in_thread, args=(task, args, kwargs), name=f"hybridrec-{task.name}", daemon=True
    )
    thread.start()
    return thread


def _run_in_thread(task, args, kwargs):
    try:
        task.apply(args=args, kwargs=kwargs, throw=True)
    except Exception:
        logger.exception("%s failed in its background thread", task.name)
    finally:
        connections.close_all()


def _steps(*, with_cb, with_split):
    """Return the stages a run goes through, in order."""
    return [
        step
        for step in TrainingRun.STEPS
        if (step != "building CB" or with_cb) and (step != "evaluating" or with_split)
    ]


def _run_update(run_id, **fields):
    """Record a run's state (nothing when the run is unknown: a task queued by older code)."""
    if run_id:
        TrainingRun.objects.filter(pk=run_id).update(**fields)


def _run_stage(run_id, steps, step, detail=""):
    """Record that a run has reached ``step`` (one of ``steps``), with an optional detail.

    Progress is for the page only: a write that fails (SQLite answers "locked" while a page
    reads the same table) is logged and the training goes on.
    """
    stage = f"{step}: {detail}" if detail else step
    try:
        _run_update(run_id, step=steps.index(step) + 1, stage=stage[:255])
    except OperationalError as exc:
        logger.warning("training run %s: progress %r not recorded: %s", run_id, stage, exc)


def _store_upload(upload, folder, stem):
    """Store an upload in ``folder`` as ``stem`` plus its suffixes (``.csv.xz``); return its storage name."""
    suffixes = "".join(Path(upload.name).suffixes[-2:]).lower()
    return storage.save_upload(upload, f"{folder}/{stem}{suffixes}")


def _is_stored_upload(name):
    """Return True for a storage name under ``training/`` (older messages carry local paths)."""
    return bool(name) and not Path(name).is_absolute() and Path(name).parts[0] == UPLOAD_FOLDER


@contextmanager
def _local_uploads(*names):
    """Yield local paths of the uploads (None stays None), fetched from storage when it is remote."""
    with ExitStack() as stack:
        yield [
            str(stack.enter_context(storage.local_copy(name))) if _is_stored_upload(name) else name
            for name in names
        ]


def _remove_uploads(*names):
    """Remove the stored upload folder the names sit in (``training/<run>/``)."""
    for name in names:
        if _is_stored_upload(name) and len(Path(name).parts) == 3:
            storage.remove_folder(str(Path(name).parent))


@shared_task(acks_late=True, reject_on_worker_lost=True)
def train_and_build(
    cf_version_id,
    interactions_path,
    *,
    cb_version_id=None,
    items_path=None,
    activate=False,
    user_id=None,
    run_id=None,
    **options,
):
    """Train from the files, then build and verify the ``building`` rows made by ``training_queue``.

    Idempotent: rows that are no longer ``building`` were finished by an earlier delivery
    and are left alone. Failures are recorded on the rows (status ``failed`` and the reason)
    and logged. With a split date the held-out pairs evaluate the new versions and the
    metrics are stored on the CF version. The run ``run_id`` records each stage and the
    outcome. ``options`` are the fields of ``TrainingOptions``. Return ``{"cf": id, "cb": id or
    None}`` of the resulting versions (an existing one when the same content was registered before).
    """
    from .pipeline import train_models

    options = TrainingOptions(**options)

    ids = [cf_version_id, cb_version_id]
    rows = {
        kind: ModelVersion.objects.filter(pk=pk).first() if pk else None
        for kind, pk in zip(("cf", "cb"), ids, strict=True)
    }
    if rows["cf"] is None:
        logger.warning("train_and_build: version %s no longer exists", cf_version_id)
        return None
    building = {kind: row for kind, row in rows.items() if row and row.status == ModelVersion.Status.BUILDING}
    if not building:
        return {kind: row.pk if row else None for kind, row in rows.items()}

    steps = _steps(with_cb=cb_version_id is not None, with_split=options.split_date is not None)
    _run_update(run_id, status=TrainingRun.Status.RUNNING, started_at=timezone.now(), steps=len(steps))
    _run_stage(run_id, steps, "reading the files")

    def progress(message):
        message = message.strip()
        if message.startswith("training ALS"):
            _run_stage(run_id, steps, "training", message)
        elif message and not message.startswith("reading"):
            _run_update(run_id, stage=message[:255])

    try:
        with _local_uploads(interactions_path, items_path) as (local_interactions, local_items):
            summary = train_models(
                interactions_path=local_interactions,
                items_path=local_items,
                out_dir=run_folder(cf_version_id),
                progress=progress,
                limits=services.bundle_limits(),
                **asdict(options),
            )
    except (TrainingError, OSError) as exc:
        text = one_line(exc)
        logger.warning("train_and_build: training for version %s failed: %s", cf_version_id, text)
        services.version_fail_builds(version_ids=ids, error=f"Training failed: {text}")
        _run_finish(run_id, rows, error=f"Training failed: {text}")
        _remove_uploads(interactions_path, items_path)
        return {"cf": cf_version_id, "cb": cb_version_id}
    except Exception as exc:
        services.version_fail_builds(version_ids=ids, error=f"Training failed: {one_line(exc)}")
        _run_finish(run_id, rows, error=f"Training failed: {one_line(exc)}")
        logger.exception("train_and_build: training for version %s failed", cf_version_id)
        raise

    user = selectors.user_by_id(user_id)
    folders = {"cf": summary["cf_dir"], "cb": summary["cb_dir"]}
    results = {}
    for kind, row in building.items():
        _run_stage(run_id, steps, f"building {kind.upper()}")
        if folders[kind] is None:
            services.version_fail_builds(
                version_ids=[row.pk], error="Training made no content vectors: the items have no text."
            )
            results[kind] = row.pk
            continue
        results[kind] = _build(row, folders[kind], activate=activate, user=user)
    _remove_uploads(interactions_path, items_path)

    if summary["test_path"] is not None and results.get("cf"):
        _run_stage(run_id, steps, "evaluating")
        _evaluate(results["cf"], results.get("cb"), summary["test_path"])
    final = {kind: results.get(kind, row.pk if row else None) for kind, row in rows.items()}
    _run_finish(run_id, rows, final=final)
    return final


def _run_finish(run_id, rows, *, final=None, error=""):
    """Record a run's end: the version each kind ended with (made or matched), or the error."""
    final = final or {kind: row.pk for kind, row in rows.items() if row}
    outcome = {
        kind: {"id": pk, "made": rows[kind] is not None and pk == rows[kind].pk}
        for kind, pk in final.items()
        if pk
    }
    failed = bool(error) or any(
        ModelVersion.objects.filter(pk=item["id"], status=ModelVersion.Status.FAILED).exists()
        for item in outcome.values()
    )
    _run_update(
        run_id,
        status=TrainingRun.Status.FAILED if failed else TrainingRun.Status.DONE,
        stage="failed" if failed else "done",
        outcome=outcome,
        error=error,
        finished_at=timezone.now(),
    )


def _build(version, folder, *, activate, user):
    """Build, verify and (when asked) activate one version; return the id of the resulting row."""
    try:
        built = services.version_build(
            kind=version.kind,
            artifacts_path=folder,
            notes=version.notes,
            user=user,
            version=version,
            verify=services.INLINE,
            activate=activate,
        ).version
    except (BundleError, RegistryError, OSError) as exc:
        # version_build has recorded the failure on the row.
        logger.warning("train_and_build: %s version %s failed: %s", version.kind, version.pk, one_line(exc))
        return version.pk
    if built.status != ModelVersion.Status.READY:
        logger.warning(
            "train_and_build: %s version %s failed verification: %s", built.kind, built.pk, built.error
        )
    return built.pk


def _evaluate(cf_id, cb_id, test_path):
    """Store offline metrics on the new CF version; a failure is logged, the versions stay."""
    from .evaluation import EvaluationError, evaluate_version

    cf_version = ModelVersion.objects.filter(pk=cf_id, status=ModelVersion.Status.READY).first()
    cb_version = (
        ModelVersion.objects.filter(pk=cb_id, status=ModelVersion.Status.READY).first() if cb_id else None
    )
    if cf_version is None:
        return
    try:
        evaluate_version(cf_version=cf_version, cb_version=cb_version, test_path=test_path)
    except (EvaluationError, BundleError, OSError) as exc:
        logger.warning("train_and_build: evaluating version %s failed: %s", cf_id, one_line(exc))


@shared_task(name="recommendations.tasks.train_and_build", acks_late=True, reject_on_worker_lost=True)
def train_and_build_queued_before_the_move(cf_version_id, interactions_path, **kwargs):
    """Run ``train_and_build`` for a message queued under its name before training became its own app."""
    return train_and_build(cf_version_id, interactions_path, **kwargs)
