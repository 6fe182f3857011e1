"""The per-process model cache: the CF model loaded up front, CB on first use, hot swap on activation.

How a swap works. At most every ``HYBRIDREC_VERSION_CHECK_SECONDS`` one request thread asks the
registry which versions are active (one query). When a loaded kind's active version changed,
that thread reads the new version's row and starts a background thread that loads it
(verify the file, memory-map it, build the engine); every request meanwhile is answered by
the model already loaded. When the load finishes, one reference assignment swaps the new
model in. Requests hold the model they started with, so no request sees half a swap.

A version that fails to load (missing, altered, refused) is recorded with the reason; the old
model keeps answering, health reports the error, and that version is tried again only after
``retry_seconds`` or when another version is activated.

Background threads never touch the database: the request thread reads what they need first.
"""

import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import DatabaseError
from django.utils import timezone

from modelstore import selectors
from modelstore.models import ModelVersion

from .exceptions import ModelUnavailable
from .loading import BUNDLE, Target, files_target, load

logger = logging.getLogger(__name__)

CF = "cf"
CB = "cb"
KINDS = (CF, CB)
ARTIFACT_SETTINGS = {CF: "HYBRIDREC_CF_ARTIFACTS", CB: "HYBRIDREC_CB_ARTIFACTS"}


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


class _KindState:
    """What the cache knows about one kind. ``model`` is replaced, never mutated."""

    def __init__(self, kind):
        self.kind = kind
        self.model = None  # the LoadedModel answering requests
        self.lock = threading.Lock()  # one load of this kind at a time
        self.loading = None  # the Target a background thread is loading
        self.error = None  # LoadError of the latest failed load, cleared by a successful one
        self.unavailable = ""  # why nothing is served, while model is None
        self.next_attempt = 0.0  # monotonic: when a first load may ask the registry again
        self.active = None  # (id, sha256) of the active version at the last check


class ModelCache:
    """Hold the loaded CF and CB models of this process and keep them current."""

    retry_seconds = 60.0

    def __init__(self):
        self._states = {kind: _KindState(kind) for kind in KINDS}
        self._check_lock = threading.Lock()
        self._next_check = 0.0
        self._threads = []
        self._threads_lock = threading.Lock()
        self.checked_at = None
        self.check_error = None

    # --- what requests call ---------------------------------------------------------------

    def get(self, kind):
        """Return the LoadedModel answering for ``kind``, loading it on first use.

        Raises ModelUnavailable with the reason when nothing of that kind can be served.
        """
        state = self._states[kind]
        self._maybe_check()
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

    def health(self):
        """Return what is loaded, where from, how long it took, and what failed; loads CF if needed."""
        try:
            self.get(CF)
            ok = True
        except ModelUnavailable:
            ok = False
        return {
            "status": "ok" if ok else "unavailable",
            "pid": os.getpid(),
            "cb_loaded": self._states[CB].model is not None,
            "checked_at": self.checked_at.isoformat() if self.checked_at else None,
            "check_error": self.check_error,
            "models": {kind: self._describe(self._states[kind]) for kind in KINDS},
        }

    # --- checking for another active version ----------------------------------------------

    def _maybe_check(self):
        now = time.monotonic()
        if now < self._next_check or not self._check_lock.acquire(blocking=False):
            return
        try:
            if now >= self._next_check:
                self._next_check = now + float(settings.HYBRIDREC_VERSION_CHECK_SECONDS)
                self._check(now)
        finally:
            self._check_lock.release()

    def _check(self, now):
        signature = self._signature()
        if signature is None:
            return
        for state in self._states.values():
            state.active = signature.get(state.kind)
            current = state.model
            if current is None:
                continue  # not loaded yet: the first request for it loads it
            target = self._target(state, signature)
            if target is None or target.key == current.target.key:
                if target is not None:
                    state.error = None
                continue
            if self._due(state, target, now):
                self._start_background(state, target)

    def _signature(self):
        """Return ``{kind: (id, sha256)}`` of the active versions, or None when the registry is unreadable."""
        try:
            signature = selectors.active_versions_signature()
        except DatabaseError as exc:
            self.check_error = f"the registry could not be read: {exc}"
            logger.warning("%s", self.check_error)
            return None
        self.checked_at = timezone.now()
        self.check_error = None
        return signature

    def _target(self, state, signature):
        """Return what ``state``'s kind should serve: the active version, else the artifacts folder."""
        active = signature.get(state.kind)
        if active is None:
            folder = getattr(settings, ARTIFACT_SETTINGS[state.kind], None)
            return files_target(state.kind, folder) if folder else None
        version_id, sha256 = active
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
        return Target(
            kind=state.kind,
            source=BUNDLE,
            version_id=version_id,
            label=row["label"],
            sha256=row["sha256"],
            file_name=row["file"],
        )

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
                state.unavailable = self.check_error
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
                state.unavailable = f"{what} {target.label} could not be loaded: {state.error.message}"
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
        model = self._load(state, files_target(state.kind, folder))
        # Health keeps saying why the active version is not served, whatever the folder did.
        state.error = version_error
        return model

    def _load(self, state, target):
        """Load ``target``; on failure record the reason on ``state`` and return None."""
        try:
            model = load(target, stamp_dir=Path(settings.HYBRIDREC_BUNDLE_CACHE_DIR))
        except Exception as exc:  # any failure leaves the old model answering; the reason goes to health
            state.error = LoadError(
                target=target,
                message=str(exc) or type(exc).__name__,
                at=timezone.now(),
                retry_at=time.monotonic() + self.retry_seconds,
            )
            logger.warning("cannot load %s %s: %s", target.kind, target.label, exc)
            return None
        state.error = None
        logger.info(
            "loaded %s %s from %s in %.3f s", target.kind, target.label, target.source, model.load_seconds
        )
        return model

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
                model = self._load(state, target)
                if model is not None:
                    state.model = model  # the swap: requests that hold the old model finish with it
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
            "unavailable": (state.unavailable or None) if model is None else None,
        }


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
    """Forget this process's cache (tests, and a forked child); background loads are waited for."""
    global _cache
    with _cache_lock:
        old, _cache = _cache, None
    if old is not None:
        old.wait(timeout=10.0)


def _forget_after_fork():
    # A forked child must not inherit locks a parent thread might hold; it loads its own copy
    # (the pages of a memory-mapped bundle are shared through the page cache anyway).
    global _cache, _cache_lock
    _cache = None
    _cache_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_after_fork)
