"""The last-good fallback: what a process serves when the file it serves changed or vanished.

It switches to the most recently active ready version whose file still verifies (or, failing
that, the kind's artifacts folder) and asks the registry to withdraw the changed version
(``version_quarantine``). A file whose stamp changed but whose content did not (``touch``)
is served again after it was re-hashed.
"""

import logging
import time
from pathlib import Path

from django.conf import settings
from django.db import DatabaseError
from django.utils import timezone

from modelstore import selectors, services, storage
from modelstore.bundles import BundleError
from modelstore.models import ModelVersion

from .loading import Target, files_target
from .state import Fault, LoadError, bundle_target

logger = logging.getLogger(__name__)

# How many earlier versions a process tries when it looks for the last good one.
LAST_GOOD_CANDIDATES = 5


class FallbackMixin:
    """The ``ModelCache`` methods that find and load a fallback, and report the faulty version.

    They use the cache's ``_load``, ``_registry_unreadable`` and ``retry_seconds``.
    """

    def _load_files_instead(self, state):
        """Serve the artifacts folder while the active version cannot be loaded."""
        folder = state.artifacts_folder
        if not folder:
            return None
        version_error = state.error
        model = self._load(state, files_target(state.kind, folder), withdraw=False)
        # Health keeps saying why the active version is not served, whatever the folder did.
        state.error = version_error
        return model

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
        if not content_checked and content_unchanged(bad):
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
            target = bundle_target(state.kind, row)
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


def content_unchanged(target: Target) -> bool:
    """Return True if ``target``'s file is still there and still holds the verified content."""
    try:
        storage.verified_path(
            target.file_name, target.sha256, stamp_dir=Path(settings.HYBRIDREC_BUNDLE_CACHE_DIR)
        )
    except (BundleError, OSError):
        return False
    return True
