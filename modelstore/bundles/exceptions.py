"""The bundle error family: every edge (API, admin, commands, tasks) maps these."""


class BundleError(Exception):
    """Base class: the file cannot be used as a model bundle."""

    code = "bundle_error"


class UnsafeBundle(BundleError):
    """The file names code or objects outside the allow-list; nothing was run."""

    code = "unsafe_bundle"


class CorruptBundle(BundleError):
    """The file is damaged, truncated, altered, or its arrays disagree."""

    code = "corrupt_bundle"


class IncompatibleBundle(BundleError):
    """The file is well-formed but not a layout or version this code reads."""

    code = "incompatible_bundle"


class OversizedBundle(CorruptBundle):
    """The file declares or expands to more than the byte budget allows; nothing was allocated."""

    code = "bundle_too_large"


class InvalidMetadata(BundleError):
    """The bundle's metadata cannot be stored as plain JSON within the limits."""

    code = "invalid_metadata"
