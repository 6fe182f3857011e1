"""Registry errors. Bundle errors (``BundleError`` and kin) live in ``modelstore.bundles``."""

from .bundles.exceptions import BundleError, CorruptBundle, IncompatibleBundle, UnsafeBundle

__all__ = [
    "BrokerUnavailable",
    "AmbiguousLabel",
    "BundleError",
    "CorruptBundle",
    "IncompatibleBundle",
    "InsufficientStorage",
    "NothingToRollBack",
    "RegistryError",
    "StorageUnavailable",
    "UnsafeBundle",
    "VersionBusy",
    "VersionIsActive",
    "VersionNotFound",
    "VersionNotReady",
]


class RegistryError(Exception):
    """A registry rule refused the request."""

    code = "registry_error"


class VersionNotReady(RegistryError):
    """Only a verified (ready) version can be activated."""

    code = "version_not_ready"


class VersionIsActive(RegistryError):
    """The active version cannot be deleted."""

    code = "version_is_active"


class NothingToRollBack(RegistryError):
    """There is no earlier active version to go back to."""

    code = "nothing_to_roll_back"


class VersionBusy(RegistryError):
    """A version that is still being built cannot be verified or changed yet."""

    code = "version_busy"
    http_status = 409


class BrokerUnavailable(RegistryError):
    """The task queue cannot be reached, so nothing was queued."""

    code = "broker_unavailable"
    http_status = 503


class InsufficientStorage(RegistryError):
    """The disk (or quota) holding bundle files is full."""

    code = "insufficient_storage"
    http_status = 507


class VersionNotFound(RegistryError):
    """No version has this id or label."""

    code = "not_found"
    http_status = 404


class AmbiguousLabel(RegistryError):
    """A label names a CF and a CB version: the id says which."""

    code = "ambiguous_label"


class StorageUnavailable(RegistryError, OSError):
    """The object storage holding bundle files cannot be read from this node."""

    code = "storage_unavailable"
    http_status = 503
