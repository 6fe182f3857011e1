"""Noticing change: the cache's version and file checks, and the thread that runs them when due.

Every ``HYBRIDREC_VERSION_CHECK_SECONDS``, and at once when an activation or an experiment's
start or stop is announced on Redis (``hybridrec.swaps``), a check asks the registry which
versions are active (one query) and stats the files the process serves; a new active version is
loaded and swapped in, a changed file stops being served (``fallback``); then the running
experiments' splits are brought up to date (``experiments``, one more query).
"""

import logging
import threading
import time
from collections.abc import Callable

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connections
from django.utils import timezone

from modelstore import selectors

from .loading import BUNDLE, files_target
from .state import bundle_target

logger = logging.getLogger(__name__)


class Watcher:
    """Call ``check`` in a daemon thread, ``delay()`` seconds apart, until stopped.

    A check that raises is logged and the thread goes on; the thread's database connections
    are closed after a failed check and when it stops.
    """

    def __init__(
        self, check: Callable[[], None], delay: Callable[[], float], *, name: str = "hybridrec-watcher"
    ):
        self._check = check
        self._delay = delay
        self._name = name
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    @property
    def alive(self) -> bool:
        """Return True while the thread runs."""
        thread = self._thread
        return thread is not None and thread.is_alive()

    def start(self) -> None:
        """Start the thread, unless it runs already."""
        if self.alive:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread and wait up to ``timeout`` seconds for it."""
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.wait(max(self._delay(), 0.01)):
            close_old_connections()
            try:
                self._check()
            except Exception:  # the watcher must outlive any one failed check
                logger.exception("the version check failed")
                connections.close_all()
        connections.close_all()


class ChecksMixin:
    """The ``ModelCache`` methods that check for another active version and for changed files.

    They use the cache's ``_states``, ``_swap``, ``_withdraw`` and ``_report``.
    """

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

    def check_now(self):
        """Check at once (an announced activation), after any check running now has finished."""
        close_old_connections()
        try:
            with self._check_lock:
                try:
                    self._check(time.monotonic())
                finally:
                    self._next_check = time.monotonic() + float(settings.HYBRIDREC_VERSION_CHECK_SECONDS)
        except Exception:
            connections.close_all()
            raise

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
        self._check_experiments(now)

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
            folder = state.artifacts_folder
            return files_target(state.kind, folder) if folder else None
        version_id, sha256 = active[0], active[1]
        for known in (
            state.model.target if state.model else None,
            state.loading,
            state.error.target if state.error else None,
        ):
            if known is not None and known.version_id == version_id and known.sha256 == sha256:
                return known
        row = selectors.version_file(version_id)
        if row is None:
            return None  # deleted between the two queries; the next check sees the new state
        return bundle_target(state.kind, row)

    def _due(self, state, target, now):
        """Return True unless ``target`` is loading now or failed less than ``retry_seconds`` ago."""
        if state.loading is not None and state.loading.key == target.key:
            return False
        return not self._failed_recently(state, target, now)

    @staticmethod
    def _failed_recently(state, target, now):
        error = state.error
        return error is not None and error.target.key == target.key and now < error.retry_at
