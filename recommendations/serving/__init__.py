"""Serving: the per-process model cache with hot swap, and the file checks it relies on."""

from modelstore.bundles import CB, CF, KINDS

from .cache import ModelCache, get_cache, reset_cache
from .exceptions import ModelUnavailable, ServingError
from .loading import BUNDLE, FILES, LoadedModel, Target

__all__ = [
    "BUNDLE",
    "CB",
    "CF",
    "FILES",
    "KINDS",
    "LoadedModel",
    "ModelCache",
    "ModelUnavailable",
    "ServingError",
    "Target",
    "get_cache",
    "reset_cache",
]
