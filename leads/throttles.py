"""Rate limits of the public intake endpoint: per client IP and per form key, both checked and counted in one
Redis round trip (`throttles_check`).

Each limit is DRF's sliding window (the `SimpleRateThrottle` rates, "60/min"; the same Retry-After), kept as a
Redis list of request times (newest first) that a small Lua script trims, checks and appends to atomically.
Several limits in one call behave as DRF's throttles checked one after the other: each limit the request is
under counts it, and the first limit it is over refuses it; the limits after that one are neither checked nor
counted.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence

from django.core.cache import cache
from redis.exceptions import RedisError
from rest_framework.throttling import SimpleRateThrottle

from leadmgmt.proxies import client_ip

log = logging.getLogger(__name__)

__all__ = ["IntakeFormRateThrottle", "IntakeIpRateThrottle", "client_ip", "throttles_check"]

# KEYS: one list per limit. ARGV: now, then the limit's (number of requests, seconds) for each key.
# Returns {0} when every limit counted the request, else {index of the refusing key (1-based), requests in its
# window, its oldest request time}; numbers travel as strings (a Lua number becomes a Redis integer).
_CHECK_AND_COUNT = """
local now = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
    local limit = tonumber(ARGV[2 * i])
    local duration = tonumber(ARGV[2 * i + 1])
    local oldest = redis.call('LINDEX', key, -1)
    while oldest and tonumber(oldest) <= now - duration do
        redis.call('RPOP', key)
        oldest = redis.call('LINDEX', key, -1)
    end
    local count = redis.call('LLEN', key)
    if count >= limit then
        return {i, tostring(count), oldest or ARGV[1]}
    end
    redis.call('LPUSH', key, ARGV[1])
    redis.call('EXPIRE', key, duration)
end
return {0}
"""
_script = None


class RedisWindowThrottle(SimpleRateThrottle):
    """A `SimpleRateThrottle` whose window is a Redis list checked and counted by one script call (DRF's does a
    cache get and a cache set). `allow_request` checks this limit alone; `throttles_check` several at once."""

    # Not DRF's key ("throttle_…"): that one holds a pickled list, this one a Redis list.
    cache_format = "throttle_window_%(scope)s_%(ident)s"
    _wait: float | None = None

    def wait(self) -> float | None:
        return self._wait

    def allow_request(self, request, view) -> bool:
        return throttles_check([self], request=request, view=view) is None


def _script_for(client):
    global _script  # noqa: PLW0603 - registered once per process; EVALSHA, loading the script if Redis lost it
    if _script is None:
        _script = client.register_script(_CHECK_AND_COUNT)
    return _script


def throttles_check(throttles: Sequence[RedisWindowThrottle], *, request, view) -> RedisWindowThrottle | None:
    """Check and count `throttles` in order, in one Redis round trip: None when every one allowed the request,
    else the first that refused it (its `wait()` is the Retry-After, as DRF computes it). A throttle with no
    rate or no key for this request (DRF: not throttled) is skipped."""
    active = [(throttle, throttle.get_cache_key(request, view)) for throttle in throttles if throttle.rate is not None]
    active = [(throttle, key) for throttle, key in active if key is not None]
    if not active:
        return None
    now = active[0][0].timer()
    args: list = [repr(now)]
    for throttle, _key in active:
        args += [throttle.num_requests, throttle.duration]
    keys = [cache.make_key(key) for _throttle, key in active]
    try:
        client = cache._cache.get_client(keys[0], write=True)
        refused, *window = _script_for(client)(keys=keys, args=args, client=client)
    except RedisError as exc:
        # Redis down (a restart, a failover): the limits fail open rather than refuse every lead of every
        # form until it is back. Capture itself needs only PostgreSQL; the pipeline sweep enqueues its task.
        log.warning("intake rate limits not checked, Redis unavailable: %s", exc)
        return None
    if not refused:
        return None
    throttle = active[refused - 1][0]
    count, oldest = int(window[0]), float(window[1])
    # DRF's wait(): the time until the oldest request in the window leaves it, spread over the requests that
    # are then available (None when even that leaves none: a rate lowered below the window's count).
    available = throttle.num_requests - count + 1
    throttle._wait = (throttle.duration - (now - oldest)) / available if available > 0 else None
    return throttle


class IntakeIpRateThrottle(RedisWindowThrottle):
    """Submissions per client IP (`intake_ip` rate); CORS preflights are not counted."""

    scope = "intake_ip"
    rate: str | None = None  # None: REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]; tests may set one

    def allow_request(self, request, view) -> bool:
        if request.method == "OPTIONS":
            return True
        return super().allow_request(request, view)

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": self.scope, "ident": client_ip(request) or "unknown"}


class IntakeFormRateThrottle(RedisWindowThrottle):
    """Submissions per form (`intake_form` rate); checked once the view has resolved `view.form`."""

    scope = "intake_form"
    rate: str | None = None  # None: REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]; tests may set one

    def get_cache_key(self, request, view) -> str | None:
        form = getattr(view, "form", None)
        if form is None:
            return None
        return self.cache_format % {"scope": self.scope, "ident": form.pk}
