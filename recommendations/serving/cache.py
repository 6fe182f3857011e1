"""The per-process model cache: the CF model loaded up front, CB on first use, hot swap on activation.

How a version change reaches a process. Every ``HYBRIDREC_VERSION_CHECK_SECONDS`` the process
asks the registry which versions are active (one query) and stats the files it serves. A
gunicorn worker does this in a watcher thread (``start_watcher``, started after the fork), so an
idle worker is as current as a busy one. A process without a watcher checks when a request
finds the check due, before that request is answered (check, then answer). Either way the
new version is loaded (verify the file, memory-map it, build the engine) while other requests
keep being answered by the model already loaded, and one reference assignment swaps it in.
Requests hold the model they started with, so no request sees half a swap.

A served file that changed or vanished (its size, times or inode differ from when it was
verified) stops being served at the next check, or sooner: every request first ``fstat``s the
file it is about to read, so an edit or a truncation is noticed before the next request reads
the changed pages. The process then switches to the last good version
(the most recently active ready version whose file still verifies) and asks the registry to
withdraw the changed one (``version_quarantine``: marked failed, the kind rolled back by the
system with the reason). The same happens when the active version's file is bad at a
process's start. A file whose stamp changed but whose content did not (``touch``) is served
again after it was re-hashed.

Any other load failure is recorded with the reason; the old model keeps answering, health
reports the error, and that version is tried again only after ``retry_seconds`` or when
another version is activated. When the registry cannot be read the loaded models keep
answering.
"""

import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connections
from django.utils import timezone

from modelstore import selectors, services, storage
from modelstore.bundles import BundleError
from modelstore.models import ModelVersion

from .exceptions import BundleFileChanged, ModelUnavailable
from .health import plain_reasons
from .loading import BUNDLE, Target, files_target, load
from .verified import ensure_verified

logger = logging.getLogger(__name__)

CF = "cf"
CB = "cb"
KINDS = (CF, CB)
ARTIFACT_SETTINGS = {CF: "HYBRIDREC_CF_ARTIFACTS", CB: "HYBRIDREC_CB_ARTIFACTS"}
# How many earlier versions a process tries when it looks for the last good one.
LAST_GOOD_CANDIDATES = 5


@dataclass(frozen=True)
class LoadError:
    """Why a target could not be loaded, and when it may be tried again (monotonic seconds)."""

    target: Target
    message: str
    at: object
    retry_at: float

    def as_dict(self):
        return {
            **self.target.reference(),
            "message": self.message,
            "at": self.at.isoformat(),
            "retry_in_seconds": round(max(self.retry_at - time.monotonic(), 0.0), 1),
        }


@dataclass(frozen=True)
class Fault:
    """A served file that changed or vanished, noticed by this process."""

    target: Target
    reason: str
    at: object

    def as_dict(self):
        return {**self.target.reference(), "reason": self.reason, "at": self.at.isoformat()}


class _KindState:
    """What the cache knows about one kind. ``model`` is replaced, never mutated."""

    def __init__(self, kind):
        self.kind = kind
        self.model = None  # the LoadedModel answering requests
        self.previous = None  # the model it replaced: the first candidate for "last good"
        self.lock = threading.RLock()  # one load of this kind at a time
        self.loading = None  # the Target being loaded
        self.error = None  # LoadError of the latest failed load, cleared by a successful one
        self.fault = None  # Fault: the latest changed file this process stopped serving
        self.unavailable = ""  # why nothing is served, while model is None
        self.next_attempt = 0.0  # monotonic: when a first load may ask the registry again
        self.active = None  # (id, sha256, withdrawn) of the active version at the last check


class ModelCache:
    """Hold the loaded CF and CB models of this process and keep them current."""

    retry_seconds = 60.0

    def __init__(self):
        self._states = {kind: _KindState(kind) for kind in KINDS}
        self._check_lock = threading.Lock()
        self._next_check = 0.0
        self._threads = []
        self._threads_lock = threading.Lock()
        self._watcher = None
        self._stop = threading.Event()
        self.checked_at = None
        self.check_error = None

    # --- what requests call ---------------------------------------------------------------

    def get(self, kind):
        """Return the LoadedModel answering for ``kind``, loading it on first use.

        Raises ModelUnavailable with the reason when nothing of that kind can be served.
        """
        state = self._states[kind]
        if not self.watching:
            self._maybe_check()
        model = state.model
        if model is not None and model.file_touched():
            self._check_file(state)  # check, then answer: never from pages that just changed
            model = state.model
        if model is None:
            model = self._load_first(state)
        if model is None:
            raise ModelUnavailable(kind, state.unavailable)
        return model

    def peek(self, kind):
        """Return the loaded model of ``kind`` or None, without loading anything."""
        return self._states[kind].model

    def preload(self):
        """Load the CF model now (a worker's start); return it, or None when none can be served."""
        try:
            return self.get(CF)
        except ModelUnavailable as exc:
            logger.warning("%s", exc)
            return None

    def wait(self, timeout=30.0):
        """Wait for background loads to finish; return True if none is left running."""
        deadline = time.monotonic() + timeout
        with self._threads_lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(max(deadline - time.monotonic(), 0.0))
        return not any(thread.is_alive() for thread in threads)

    # --- the watcher thread ---------------------------------------------------------------

    @property
    def watching(self):
        """Return True while this process's watcher thread runs the checks."""
        watcher = self._watcher
        return watcher is not None and watcher.is_alive()

    def start_watcher(self):
        """Run the version and file checks in a thread of this process, so idle processes keep up.

        Call it in each serving process after it forked (gunicorn's ``post_worker_init``):
        threads do not survive a fork.
        """
        with self._threads_lock:
            if self.watching:
                return
            self._stop.clear()
            self._watcher = threading.Thread(target=self._watch, name="hybridrec-watcher", daemon=True)
            self._watcher.start()

    def stop_watcher(self, timeout=10.0):
        """Stop the watcher thread and wait for it."""
        self._stop.set()
        watcher = self._watcher
        if watcher is not None:
            watcher.join(timeout)

    def _watch(self):
        while not self._stop.wait(max(self._next_check - time.monotonic(), 0.01)):
            close_old_connections()
            try:
                self._maybe_check()
            except Exception:  # the watcher must outlive any one failed check
                logger.exception("the version check failed")
                connections.close_all()
        connections.close_all()

    # --- health ---------------------------------------------------------------------------

    def health(self):
        """Return what is loaded, where from, how long it took, what failed and why it is degraded.

        ``status`` is ``ok``, ``degraded`` (serving, but not everything is as the registry
        says) or ``unavailable`` (no CF model); ``reasons`` says why, without paths or raw errors.
        Loads CF if needed.
        """
        try:
            self.get(CF)
            can_serve = True
        except ModelUnavailable:
            can_serve = False
        models = {kind: self._describe(self._states[kind]) for kind in KINDS}
        reasons = plain_reasons(models, registry_unreadable=bool(self.check_error))
        status = "unavailable" if not can_serve else "degraded" if reasons else "ok"
        return {
            "status": status,
            "can_serve": can_serve,
            "reasons": reasons,
            "pid": os.getpid(),
            "watching": self.watching,
            "cb_loaded": self._states[CB].model is not None,
            "checked_at": self.checked_at.isoformat() if self.checked_at else None,
            "check_error": self.check_error,
            "models": models,
        }

    # --- checking for another active version and for changed files -------------------------

    def _maybe_check(self):
        now = time.monotonic()
        if now < self._next_check or not self._check_lock.acquire(blocking=False):
            return
        try:
            if now >= self._next_check:
                try:
                    self._check(now)
                finally:
                    self._next_check = time.monotonic() + float(settings.HYBRIDREC_VERSION_CHECK_SECONDS)
        finally:
            self._check_lock.release()

    def _check(self, now):
        for state in self._states.values():
            self._check_file(state)
        signature = self._signature()
        if signature is None:
            return
        for state in self._states.values():
            state.active = signature.get(state.kind)
            current = state.model
            if current is None:
                continue  # not loaded yet: the first request for it loads it
            try:
                target = self._target(state, signature)
            except DatabaseError as exc:
                self._registry_unreadable(exc)
                return
            if target is None or target.key == current.target.key:
                if target is not None:
                    state.error = None
                    state.fault = None
                continue
            if self._due(state, target, now):
                self._swap(state, target)

    def _check_file(self, state):
        """Stop serving a bundle whose file changed or vanished since it was verified."""
        model = state.model
        if model is None or model.target.source != BUNDLE:
            return
        change = model.file_change()
        if change is None:
            return
        reason = f"the file of {state.kind} version {model.target.label} {change}"
        with state.lock:
            if state.model is not model:
                return
            state.model = None  # requests wait on the lock for the fallback instead of using it
            fallback = None
            try:
                fallback = self._withdraw(state, model.target, reason, tell_registry=False)
            finally:
                state.model = fallback
            if fallback is None:
                state.unavailable = reason
            fault = state.fault
        # Requests are answered by the fallback while the registry records the withdrawal.
        if fault is not None and fault.target.key == model.target.key:
            self._report(fault, fallback)

    def _signature(self):
        """Return ``{kind: (id, sha256, withdrawn)}`` of the active versions, or None when unreadable."""
        try:
            signature = selectors.serving_signature()
        except DatabaseError as exc:
            self._registry_unreadable(exc)
            return None
        self.checked_at = timezone.now()
        self.check_error = None
        return signature

    def _registry_unreadable(self, exc):
        self.check_error = f"the registry could not be read: {exc}"
        logger.warning("%s", self.check_error)
        connections.close_all()  # a broken connection must not be reused by this thread

    def _target(self, state, signature):
        """Return what ``state``'s kind should serve: the active version, else the artifacts folder."""
        active = signature.get(state.kind)
        if active is None:
            folder = getattr(settings, ARTIFACT_SETTINGS[state.kind], None)
            return files_target(state.kind, folder) if folder else None
        version_id, sha256 = active[0], active[1]
        for known in (
            state.model.target if state.model else None,
            state.loading,
            state.error.target if state.error else None,
        ):
            if known is not None and known.version_id == version_id and known.sha256 == sha256:
                return known
        row = ModelVersion.objects.filter(pk=version_id).values("label", "file", "sha256").first()
        if row is None:
            return None  # deleted between the two queries; the next check sees the new state
        return _bundle_target(state.kind, version_id, row)

    def _due(self, state, target, now):
        """Return True unless ``target`` is loading now or failed less than ``retry_seconds`` ago."""
        if state.loading is not None and state.loading.key == target.key:
            return False
        return not self._failed_recently(state, target, now)

    @staticmethod
    def _failed_recently(state, target, now):
        error = state.error
        return error is not None and error.target.key == target.key and now < error.retry_at

    # --- loading --------------------------------------------------------------------------

    def _load_first(self, state):
        """Load the first model of a kind while the caller waits; other callers wait for the same load."""
        with state.lock:
            if state.model is not None:
                return state.model
            now = time.monotonic()
            if now < state.next_attempt:
                return None
            state.next_attempt = now + float(settings.HYBRIDREC_VERSION_CHECK_SECONDS)
            signature = self._signature()
            if signature is None:
                state.unavailable = "the registry cannot be read (the database is unavailable)"
                return None
            state.active = signature.get(state.kind)
            target = self._target(state, signature)
            if target is None:
                state.unavailable = (
                    f"no {state.kind} version is active and {ARTIFACT_SETTINGS[state.kind]} is not set"
                )
                return None
            # A background preload of this target waits for this lock, then finds it loaded.
            model = None if self._failed_recently(state, target, now) else self._load(state, target)
            if model is None and target.source == BUNDLE:
                model = self._load_files_instead(state)
            if model is None:
                what = f"the active {state.kind} version" if target.source == BUNDLE else "the folder"
                reason = state.error.message if state.error else "no earlier version could be loaded"
                state.unavailable = f"{what} {target.label} could not be loaded: {reason}"
                return None
            state.model = model
            state.unavailable = ""
        if state.kind == CF and settings.HYBRIDREC_CB_PRELOAD == "background":
            self._preload_cb(signature)
        return model

    def _load_files_instead(self, state):
        """Serve the artifacts folder while the active version cannot be loaded."""
        folder = getattr(settings, ARTIFACT_SETTINGS[state.kind], None)
        if not folder:
            return None
        version_error = state.error
        model = self._load(state, files_target(state.kind, folder), withdraw=False)
        # Health keeps saying why the active version is not served, whatever the folder did.
        state.error = version_error
        return model

    def _load(self, state, target, *, withdraw=True):
        """Load ``target``; on failure record the reason on ``state`` and return None.

        When the target's file changed or vanished (and ``withdraw``), return the last good
        version instead, or None.
        """
        try:
            model = load(target, stamp_dir=Path(settings.HYBRIDREC_BUNDLE_CACHE_DIR))
        except BundleFileChanged as exc:
            self._record_error(state, target, exc)
            return self._withdraw(state, target, str(exc), content_checked=True) if withdraw else None
        except Exception as exc:  # any failure leaves the old model answering; the reason goes to health
            self._record_error(state, target, exc)
            return None
        state.error = None
        logger.info(
            "loaded %s %s from %s in %.3f s", target.kind, target.label, target.source, model.load_seconds
        )
        return model

    def _record_error(self, state, target, exc):
        state.error = LoadError(
            target=target,
            message=str(exc) or type(exc).__name__,
            at=timezone.now(),
            retry_at=time.monotonic() + self.retry_seconds,
        )
        logger.warning("cannot load %s %s: %s", target.kind, target.label, exc)

    def _swap(self, state, target):
        """Load ``target`` in this thread and swap it in; requests meanwhile use the old model."""
        with state.lock:
            if state.model is not None and state.model.target.key == target.key:
                return
            state.loading = target
            try:
                model = self._load(state, target)
            finally:
                state.loading = None
            if model is not None and model is not state.model:
                if model.target.key == target.key:
                    state.fault = None
                state.previous, state.model = state.model, model  # the swap
                state.unavailable = ""

    def _withdraw(self, state, bad, reason, *, content_checked=False, tell_registry=True):
        """Return the last good model of ``bad``'s kind, and have the registry withdraw ``bad``.

        The caller holds ``state.lock``. ``bad`` keeps its LoadError (so it is not retried at
        once) unless its content turns out unchanged; ``content_checked`` says it was just
        hashed and differed. With ``tell_registry`` False the caller calls ``_report`` itself
        (after releasing the lock) when ``state.fault`` names ``bad``.
        """
        logger.error("%s stops being served: %s", bad.label, reason)
        error = state.error if state.error and state.error.target.key == bad.key else None
        fallback = self._last_good(state, bad)
        if fallback is None:
            fallback = self._load_files_instead(state)
        if not content_checked and _content_unchanged(bad):
            # Only the stamp changed (touched, copied back): serve it again at the next check.
            state.error = None
            return fallback
        state.error = error or LoadError(
            target=bad, message=reason, at=timezone.now(), retry_at=time.monotonic() + self.retry_seconds
        )
        state.fault = Fault(target=bad, reason=reason, at=timezone.now())
        if tell_registry:
            self._report(state.fault, fallback)
        return fallback

    def _last_good(self, state, bad):
        """Return a loaded model of the most recently active version whose file still verifies."""
        in_memory = [
            model
            for model in (state.model, state.previous)
            if model is not None and model.target.key != bad.key and model.file_change() is None
        ]
        try:
            rows = list(
                selectors.last_good_versions(state.kind, exclude=bad.version_id).values(
                    "id", "label", "file", "sha256"
                )[:LAST_GOOD_CANDIDATES]
            )
        except DatabaseError as exc:
            self._registry_unreadable(exc)
            return in_memory[0] if in_memory else None
        for row in rows:
            target = _bundle_target(state.kind, row["id"], row)
            kept = next((model for model in in_memory if model.target.key == target.key), None)
            if kept is not None:
                return kept
            model = self._load(state, target, withdraw=False)
            if model is not None:
                return model
        return None

    def _report(self, fault, fallback):
        """Ask the registry to withdraw the faulty version; the next check retries when it cannot."""
        bad = fault.target
        if bad.version_id is None:
            return
        fallback_id = fallback.target.version_id if fallback is not None else None
        try:
            version = ModelVersion(pk=bad.version_id, kind=bad.kind)
            services.version_quarantine(version=version, reason=fault.reason, fallback=fallback_id)
        except DatabaseError as exc:
            self._registry_unreadable(exc)

    def _start_background(self, state, target):
        state.loading = target
        thread = threading.Thread(
            target=self._load_and_swap, args=(state, target), name=f"hybridrec-load-{state.kind}", daemon=True
        )
        with self._threads_lock:
            self._threads = [running for running in self._threads if running.is_alive()] + [thread]
        thread.start()

    def _load_and_swap(self, state, target):
        try:
            with state.lock:
                if state.model is not None and state.model.target.key == target.key:
                    return
                model = self._load(state, target, withdraw=False)
                if model is not None:
                    state.model = model
                    state.unavailable = ""
        finally:
            state.loading = None

    def _preload_cb(self, signature):
        state = self._states[CB]
        if state.model is not None or state.loading is not None:
            return
        target = self._target(state, signature)
        if target is not None and self._due(state, target, time.monotonic()):
            self._start_background(state, target)

    def _describe(self, state):
        model = state.model
        active = state.active
        loading = state.loading
        described = model.describe() if model else {}
        return {
            "loaded": model is not None,
            **described,
            "active": {"id": active[0], "sha256": active[1]} if active else None,
            "serving_active": bool(
                model and active and model.target.source == BUNDLE and model.target.version_id == active[0]
            ),
            "loading": loading.reference() if loading else None,
            "last_error": state.error.as_dict() if state.error else None,
            "fault": state.fault.as_dict() if state.fault else None,
            "withdrawn": active[2] if active else None,
            "unavailable": (state.unavailable or None) if model is None else None,
        }


def _bundle_target(kind, version_id, row):
    return Target(
        kind=kind,
        source=BUNDLE,
        version_id=version_id,
        label=row["label"],
        sha256=row["sha256"],
        file_name=row["file"],
    )


def _content_unchanged(target):
    """Return True if ``target``'s file is still there and still holds the verified content."""
    try:
        path = storage.local_path(target.file_name, target.sha256)
        ensure_verified(path, target.sha256, stamp_dir=Path(settings.HYBRIDREC_BUNDLE_CACHE_DIR))
    except (BundleError, OSError):
        return False
    return True


_cache = None
_cache_lock = threading.Lock()


def get_cache():
    """Return this process's ModelCache, creating it on first use."""
    global _cache
    if _cache is None:
        with _cache_lock:
            if _cache is None:
                _cache = ModelCache()
    return _cache


def reset_cache():
    """Forget this process's cache (tests); its watcher is stopped and background loads waited for."""
    global _cache
    with _cache_lock:
        old, _cache = _cache, None
    if old is not None:
        old.stop_watcher()
        old.wait(timeout=10.0)


def _forget_after_fork():
    # A forked child must not inherit locks a parent thread might hold, nor a watcher thread that
    # did not survive the fork (gunicorn's preload_app); it loads its own copy (the pages of a
    # memory-mapped bundle are shared through the page cache anyway) and starts its own watcher.
    global _cache, _cache_lock
    _cache = None
    _cache_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_after_fork)
