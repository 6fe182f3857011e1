"""Errors of the serving layer; the API maps them to HTTP answers."""


class ServingError(Exception):
    """Base class for what the serving layer refuses on purpose."""

    code = "serving_error"


class ModelUnavailable(ServingError):
    """No model of a kind can be served: none is active, none loads, no artifacts fallback."""

    code = "model_unavailable"

    def __init__(self, kind, reason):
        super().__init__(reason)
        self.kind = kind
        self.reason = reason

    def __str__(self):
        return f"no {self.kind} model can be served: {self.reason}"


class BundleFileChanged(ServingError):
    """A version's stored file changed, shrank or vanished after the registry verified it."""

    code = "bundle_file_changed"
