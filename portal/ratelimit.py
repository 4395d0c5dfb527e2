"""Rate limits for form posts (asking, sign-up, password reset, newsletter).

A fixed window counter in the cache (Redis in production, so every web
process shares it). Over the limit, the user gets a friendly page with status
429 instead of a bare error. When the cache is unreachable the limiter lets
the request through: a patient's question matters more than the limit.
"""

import functools
import hashlib
import logging

from django.conf import settings
from django.core.cache import DEFAULT_CACHE_ALIAS, cache, caches
from django.core.cache.backends.redis import RedisCache
from django.shortcuts import render

from portal.cache_outage import outage
from portal.client_address import client_ip
from portal.database import TRANSIENT_DATABASE_ERRORS

logger = logging.getLogger(__name__)


def _cache_key(scope: str, ident: str, period: int) -> str:
    digest = hashlib.sha256(ident.encode()).hexdigest()[:24]
    return f"ratelimit:{scope}:{period}:{digest}"


# Start the window (the counter at 0 with its expiry) unless it is running, and count
# one attempt: one command, run whole on the server. A refund that takes the count back
# to 0 leaves the window's end where it was.
_COUNT = """
redis.call('SET', KEYS[1], 0, 'EX', ARGV[1], 'NX')
return redis.call('INCR', KEYS[1])
"""
_count_script = None  # redis-py's Script: EVALSHA, loading the script again after a Redis restart


def _count_on_redis(backend: RedisCache, key: str, period: int) -> int:
    """Start the window if needed and count the attempt, in one round trip: Django's add()
    then incr() take three (SET NX, EXISTS, INCRBY), a MULTI/EXEC pipeline of SET NX EX and
    INCRBY one but half again the CPU of a script in redis-py (issue 17: 250 against 165 µs
    a count). The counter stays a plain integer under the cache's own key, so refund() and
    reset() still reach it."""
    global _count_script
    full_key = backend.make_and_validate_key(key)
    client = backend._cache.get_client(full_key, write=True)
    if _count_script is None:
        _count_script = client.register_script(_COUNT)
    return _count_script(keys=[full_key], args=[period], client=client)


def _count(key: str, period: int) -> int:
    backend = caches[DEFAULT_CACHE_ALIAS]
    if isinstance(backend, RedisCache):
        return _count_on_redis(backend, key, period)
    cache.add(key, 0, timeout=period)
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=period)
        return 1


def hit(scope: str, ident: str, limit: int, period: int) -> bool:
    """Count one attempt; True while the attempts in this window are within the limit."""
    if outage.active():  # a recent failure: fail open at once rather than wait for a timeout
        return True
    try:
        count = _count(_cache_key(scope, ident, period), period)
    except Exception as error:  # noqa: BLE001 - cache down: fail open, loudly
        logger.warning("Rate limit %s not checked: the cache is unavailable", scope, exc_info=True)
        outage.failed(f"counting the {scope} rate limit", error)
        return True
    return count <= limit


def refund(scope: str, ident: str, period: int) -> None:
    """Give back one attempt: the request failed on our side (a database blip), and
    a visitor told to try again must not use up their limit doing so."""
    try:
        cache.decr(_cache_key(scope, ident, period))
    except Exception:  # noqa: BLE001 - expired, or the cache is down: nothing to give back
        logger.info("Rate limit %s: no attempt to give back", scope)


def reset(scope: str, ident: str, period: int) -> None:
    cache.delete(_cache_key(scope, ident, period))


def client_ident(request) -> str:
    """The signed-in user, else the client address."""
    if request.user.is_authenticated:
        return f"user:{request.user.pk}"
    return f"ip:{client_ip(request)}"


def rate_limited(scope: str):
    """Limit POSTs to a view by settings.RATE_LIMITS[scope] = (limit, period seconds)."""

    def decorator(view):
        @functools.wraps(view)
        def wrapper(request, *args, **kwargs):
            if request.method == "POST" and settings.RATELIMIT_ENABLED:
                limit, period = settings.RATE_LIMITS[scope]
                if not hit(scope, client_ident(request), limit, period):
                    minutes = max(1, period // 60)
                    return render(
                        request,
                        "ratelimited.html",
                        {"scope": scope, "limit": limit, "minutes": minutes},
                        status=429,
                    )
                try:
                    return view(request, *args, **kwargs)
                except TRANSIENT_DATABASE_ERRORS:
                    refund(scope, client_ident(request), period)
                    raise
            return view(request, *args, **kwargs)

        return wrapper

    return decorator
