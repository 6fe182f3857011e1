"""What the model cache knows about one kind: the served model, the last failure, the last fault."""

import threading
import time
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings

from modelstore.bundles import CB, CF

from .loading import BUNDLE, LoadedModel, Target

# The artifacts folder each kind falls back to when no version of it is active.
ARTIFACT_SETTINGS = {CF: "HYBRIDREC_CF_ARTIFACTS", CB: "HYBRIDREC_CB_ARTIFACTS"}


@dataclass(frozen=True)
class LoadError:
    """Why a target could not be loaded, and when it may be tried again (monotonic seconds)."""

    target: Target
    message: str
    at: datetime
    retry_at: float

    def as_dict(self) -> dict:
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
    at: datetime

    def as_dict(self) -> dict:
        return {**self.target.reference(), "reason": self.reason, "at": self.at.isoformat()}


class KindState:
    """What the cache knows about one kind. ``model`` is replaced, never mutated."""

    def __init__(self, kind: str):
        self.kind = kind
        self.model: LoadedModel | None = None  # the model answering requests
        self.previous: LoadedModel | None = None  # the model it replaced: first candidate for "last good"
        self.lock = threading.RLock()  # one load of this kind at a time
        self.loading: Target | None = None  # the target being loaded
        self.error: LoadError | None = None  # the latest failed load, cleared by a successful one
        self.fault: Fault | None = None  # the latest changed file this process stopped serving
        self.unavailable = ""  # why nothing is served, while model is None
        self.next_attempt = 0.0  # monotonic: when a first load may ask the registry again
        self.active: tuple | None = None  # (id, sha256, withdrawn) of the active version at the last check

    @property
    def artifacts_folder(self) -> str | None:
        """Return the artifacts folder this kind serves when no version is active, if one is set."""
        return getattr(settings, ARTIFACT_SETTINGS[self.kind], None) or None

    def describe(self) -> dict:
        """Return what health reports about this kind: the model, the active version, errors."""
        model, active, loading = self.model, self.active, self.loading
        return {
            "loaded": model is not None,
            **(model.describe() if model else {}),
            "active": {"id": active[0], "sha256": active[1]} if active else None,
            "serving_active": bool(
                model and active and model.target.source == BUNDLE and model.target.version_id == active[0]
            ),
            "loading": loading.reference() if loading else None,
            "last_error": self.error.as_dict() if self.error else None,
            "fault": self.fault.as_dict() if self.fault else None,
            "withdrawn": active[2] if active else None,
            "unavailable": (self.unavailable or None) if model is None else None,
        }


def bundle_target(kind: str, row: dict) -> Target:
    """Return the target of a registry version from its ``{"id", "label", "file", "sha256"}``."""
    return Target(
        kind=kind,
        source=BUNDLE,
        version_id=row["id"],
        label=row["label"],
        sha256=row["sha256"],
        file_name=row["file"],
    )
