"""Settings checks run by ``manage.py check``, every command that checks, and gunicorn's boot.

Each problem is one line naming the variable, its value and what is allowed.
"""

from django.conf import settings
from django.core.checks import Error, register

RATE_PERIODS = ("s", "sec", "m", "min", "h", "hour", "d", "day")
THROTTLE_VARIABLES = {
    "recommendations": "HYBRIDREC_THROTTLE_RECOMMENDATIONS",
    "batch": "HYBRIDREC_THROTTLE_BATCH",
    "models": "HYBRIDREC_THROTTLE_MODELS",
    "health": "HYBRIDREC_THROTTLE_HEALTH",
}


def _error(number, name, value, allowed):
    return Error(f"{name}={value!r} is out of range: {allowed}.", id=f"hybridrec.E{number:03d}")


def rate_is_valid(rate):
    """Return True for a throttle rate DRF understands: ``<requests>/<s|m|h|d>``, requests ≥ 1."""
    if rate is None:
        return True
    count, _, period = str(rate).partition("/")
    return count.isdigit() and int(count) >= 1 and period.lower() in RATE_PERIODS


@register("hybridrec")
def check_settings(app_configs=None, **kwargs):
    """Refuse settings that would make requests fail later."""
    errors = []
    max_k = settings.HYBRIDREC_MAX_K
    if max_k < 1:
        errors.append(_error(1, "HYBRIDREC_MAX_K", max_k, "it must be an integer of at least 1"))
    default_k = settings.HYBRIDREC_DEFAULT_K
    if max_k >= 1 and not 1 <= default_k <= max_k:
        errors.append(
            _error(2, "HYBRIDREC_DEFAULT_K", default_k, f"it must be between 1 and HYBRIDREC_MAX_K ({max_k})")
        )
    if settings.HYBRIDREC_MAX_BATCH < 1:
        errors.append(
            _error(
                3, "HYBRIDREC_MAX_BATCH", settings.HYBRIDREC_MAX_BATCH, "it must be an integer of at least 1"
            )
        )
    weight = settings.HYBRIDREC_HYBRID_WEIGHT
    if not 0.0 <= weight <= 1.0:
        errors.append(_error(4, "HYBRIDREC_HYBRID_WEIGHT", weight, "it must be between 0 and 1"))
    rates = settings.REST_FRAMEWORK.get("DEFAULT_THROTTLE_RATES", {})
    for scope, rate in rates.items():
        if not rate_is_valid(rate):
            name = THROTTLE_VARIABLES.get(scope, f"throttle rate {scope}")
            errors.append(
                _error(5, name, rate, "it must be <requests>/<period>, e.g. 600/min (period s, m, h or d)")
            )
    positive = {
        "HYBRIDREC_VERSION_CHECK_SECONDS": settings.HYBRIDREC_VERSION_CHECK_SECONDS,
        "HYBRIDREC_MAX_UPLOAD_BYTES": settings.HYBRIDREC_MAX_UPLOAD_BYTES,
        "HYBRIDREC_TASK_VISIBILITY_SECONDS": settings.HYBRIDREC_TASK_VISIBILITY_SECONDS,
        "HYBRIDREC_STUCK_VERIFY_SECONDS": settings.HYBRIDREC_STUCK_VERIFY_SECONDS,
        "HYBRIDREC_STUCK_BUILD_SECONDS": settings.HYBRIDREC_STUCK_BUILD_SECONDS,
        "HYBRIDREC_SWEEP_SECONDS": settings.HYBRIDREC_SWEEP_SECONDS,
    }
    for name, value in positive.items():
        if not value > 0:
            errors.append(_error(6, name, value, "it must be greater than 0"))
    return errors
