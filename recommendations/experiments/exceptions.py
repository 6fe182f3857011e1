"""Experiment errors. They are registry errors, so every door maps them as it maps those (4xx)."""

from modelstore.exceptions import RegistryError

__all__ = [
    "ArmWithdrawn",
    "ExperimentError",
    "ExperimentNotFound",
    "ExperimentNotRunning",
    "ExperimentRunning",
    "InvalidArms",
]


class ExperimentError(RegistryError):
    """An experiment rule refused the request."""

    code = "experiment_error"
    http_status = 400


class InvalidArms(ExperimentError):
    """The arms are not a valid split: shares, versions, kinds or the control are wrong."""

    code = "invalid_arms"


class ExperimentRunning(ExperimentError):
    """An experiment already runs for this kind."""

    code = "experiment_running"
    http_status = 409


class ExperimentNotRunning(ExperimentError):
    """The experiment has already stopped."""

    code = "experiment_not_running"
    http_status = 409


class ExperimentNotFound(ExperimentError):
    """No experiment has this id."""

    code = "not_found"
    http_status = 404


class ArmWithdrawn(ExperimentError):
    """The arm's version was withdrawn (its file changed): it cannot be promoted."""

    code = "arm_withdrawn"
    http_status = 409
