"""Per-scope rate limits that cost the same at any rate."""

import logging

from redis import RedisError
from rest_framework.throttling import ScopedRateThrottle

logger = logging.getLogger(__name__)


class ScopedWindowThrottle(ScopedRateThrottle):
    """Limit each client to the scope's rate with a fixed-window counter in the cache.

    DRF's ScopedRateThrottle keeps the time of every request in the window and reads and
    writes that whole list through the cache on every request: at the default 6000/min that
    is up to 6000 floats pickled per request. A counter per window is one small ``incr``.
    A client can reach twice the rate across a window boundary, which is fine for a limit
    meant to stop floods. Rates and scopes are the same settings (``DEFAULT_THROTTLE_RATES``).
    When the cache's Redis cannot be reached, requests are let through (and logged): serving
    matters more than counting.
    """

    def allow_request(self, request, view):
        self.scope = getattr(view, self.scope_attr, None)
        if not self.scope:
            return True
        self.rate = self.get_rate()
        if self.rate is None:
            return True
        self.num_requests, self.duration = self.parse_rate(self.rate)
        ident_key = self.get_cache_key(request, view)
        if ident_key is None:
            return True
        self.now = self.timer()
        window = int(self.now // self.duration)
        self.window_ends = (window + 1) * self.duration
        try:
            count = self._count(f"{ident_key}:{window}")
        except RedisError as exc:
            logger.warning("throttle counters unavailable (%s); request let through", exc)
            return True
        return count <= self.num_requests

    def _count(self, key):
        """Add this request to the window's counter; return the count."""
        if self.cache.add(key, 1, timeout=self.duration + 1):
            count = 1
        else:
            try:
                count = self.cache.incr(key)
            except ValueError:  # expired between add and incr: a new window
                self.cache.set(key, 1, timeout=self.duration + 1)
                count = 1
        return count

    def wait(self):
        return max(self.window_ends - self.now, 0.0)
