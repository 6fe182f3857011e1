"""Registry errors. Bundle errors (``BundleError`` and kin) live in ``modelstore.bundles``."""

from .bundles.exceptions import BundleError, CorruptBundle, IncompatibleBundle, UnsafeBundle

__all__ = [
    "BundleError",
    "CorruptBundle",
    "IncompatibleBundle",
    "NothingToRollBack",
    "RegistryError",
    "UnsafeBundle",
    "VersionIsActive",
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
