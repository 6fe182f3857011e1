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

The checks and their thread live in ``watcher``, the last-good fallback in ``fallback``, what
the cache knows per kind in ``state``; the registry is read through ``modelstore.selectors``.
"""

import logging
import os
import threading
import time
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from hybridrec import metrics, swaps
from modelstore.bundles import CB, CF, KINDS

from .exceptions import BundleFileChanged, ModelUnavailable
from .experiments import ExperimentsMixin
from .fallback import FallbackMixin
from .health import plain_reasons, withdrawn_arm_reasons
from .loading import BUNDLE, load
from .state import ARTIFACT_SETTINGS, KindState, LoadError
from .watcher import ChecksMixin, Watcher

logger = logging.getLogger(__name__)


class ModelCache(ChecksMixin, FallbackMixin, ExperimentsMixin):
    """Hold the loaded CF and CB models of this process and keep them current."""

    retry_seconds = 60.0

    def __init__(self):
        self._states = {kind: KindState(kind) for kind in KINDS}
        self._check_lock = threading.Lock()
        self._next_check = 0.0
        self._threads = []
        self._threads_lock = threading.Lock()
        self._watcher = Watcher(self._maybe_check, lambda: self._next_check - time.monotonic())
        self._subscriber = swaps.Subscriber(self._announced, on_connect=self.check_now)
        self.checked_at = None
        self.check_error = None
        self._init_experiments()

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
        return self._watcher.alive

    def start_watcher(self):
        """Run the version and file checks in a thread of this process, so idle processes keep up.

        Call it in each serving process after it forked (gunicorn's ``post_worker_init``):
        threads do not survive a fork.
        """
        with self._threads_lock:
            self._watcher.start()
            self._subscriber.start()

    def stop_watcher(self, timeout=10.0):
        """Stop the watcher and subscriber threads and wait for them."""
        self._subscriber.stop(timeout)
        self._watcher.stop(timeout)

    def _announced(self, kind):
        if kind in self._states:
            self.check_now()

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
        models = {kind: self._states[kind].describe() for kind in KINDS}
        withdrawn_arms = self.describe_withdrawn_arms()
        reasons = plain_reasons(models, registry_unreadable=bool(self.check_error))
        reasons += withdrawn_arm_reasons(withdrawn_arms)
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
            "experiments": self.describe_experiments(),
            "withdrawn_arms": withdrawn_arms,
        }

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
            metrics.set_loaded(state.kind, model.target.version_id)
        if state.kind == CF and settings.HYBRIDREC_CB_PRELOAD == "background":
            self._preload_cb(signature)
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
        metrics.observe_load(target.kind, model.load_seconds)
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
        metrics.count_load_error(target.kind)
        logger.warning("cannot load %s %s: %s", target.kind, target.label, exc)

    def _swap(self, state, target):
        """Load ``target`` in this thread and swap it in; requests meanwhile use the old model."""
        started = time.monotonic()
        with state.lock:
            if state.model is not None and state.model.target.key == target.key:
                return
            state.loading = target
            try:
                # A promoted candidate is already loaded as an experiment's arm: swap it in as is.
                model = self._reusable(target) or self._load(state, target)
            finally:
                state.loading = None
            if model is not None and model is not state.model:
                if model.target.key == target.key:
                    state.fault = None
                state.previous, state.model = state.model, model  # the swap
                state.unavailable = ""
                metrics.observe_swap(state.kind, time.monotonic() - started)
                metrics.set_loaded(state.kind, model.target.version_id)

    def _reusable(self, target):
        model = self.loaded_model(target)
        return model if model is not None and model.file_change() is None else None

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
                    metrics.set_loaded(state.kind, model.target.version_id)
        finally:
            state.loading = None

    def _preload_cb(self, signature):
        state = self._states[CB]
        if state.model is not None or state.loading is not None:
            return
        target = self._target(state, signature)
        if target is not None and self._due(state, target, time.monotonic()):
            self._start_background(state, target)


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
