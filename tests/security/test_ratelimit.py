"""The fixed-window limiter behind the rate-limited forms."""

import pytest
from django.http import HttpResponse
from django.test import RequestFactory

from portal import ratelimit

pytestmark = pytest.mark.django_db


def test_attempts_within_the_limit_pass_and_the_next_is_refused():
    ratelimit.reset("unit", "ip:10.0.0.1", 60)
    assert all(ratelimit.hit("unit", "ip:10.0.0.1", 3, 60) for _ in range(3))
    assert ratelimit.hit("unit", "ip:10.0.0.1", 3, 60) is False
    # Another client has its own budget.
    ratelimit.reset("unit", "ip:10.0.0.2", 60)
    assert ratelimit.hit("unit", "ip:10.0.0.2", 3, 60) is True


def test_limited_view_answers_429_with_a_friendly_page(settings, patient):
    settings.RATELIMIT_ENABLED = True
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "unit-view": (2, 60)}

    @ratelimit.rate_limited("unit-view")
    def view(request):
        return HttpResponse("ok")

    def post():
        request = RequestFactory().post("/x", REMOTE_ADDR="10.9.9.9")
        request.user = patient
        return view(request)

    ratelimit.reset("unit-view", f"user:{patient.pk}", 60)
    assert [post().status_code for _ in range(2)] == [200, 200]
    refused = post()
    assert refused.status_code == 429
    assert b"Please wait a moment" in refused.content


def test_get_requests_are_never_limited(settings, patient):
    settings.RATELIMIT_ENABLED = True
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "unit-get": (1, 60)}

    @ratelimit.rate_limited("unit-get")
    def view(request):
        return HttpResponse("ok")

    request = RequestFactory().get("/x")
    request.user = patient
    assert [view(request).status_code for _ in range(3)] == [200, 200, 200]


def test_limiter_lets_requests_through_when_the_cache_is_down(settings, caplog):
    settings.CACHES = {
        "default": {
            "BACKEND": "portal.redis_cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"socket_connect_timeout": 0.5},
        }
    }
    assert ratelimit.hit("unit-down", "ip:10.0.0.3", 1, 60) is True
    assert "cache is unavailable" in caplog.text


def test_after_one_failure_the_limiter_does_not_wait_on_the_cache_again(monkeypatch):
    """A hung Redis costs REDIS_TIMEOUT_SECONDS per try: the shared outage makes the next
    attempts fail open at once (an ask POST had paid five timeouts, over 3 s)."""
    tries = []

    def hung(key, period):
        tries.append(key)
        raise TimeoutError("Redis does not answer")

    monkeypatch.setattr(ratelimit, "_count", hung)

    assert [ratelimit.hit("ask", "user:1", 1, 60) for _ in range(3)] == [True, True, True]
    assert len(tries) == 1


def test_anonymous_visitors_are_counted_by_the_address_the_proxy_saw(settings):
    settings.TRUSTED_PROXY_COUNT = 1
    request = RequestFactory().post("/x", REMOTE_ADDR="10.0.0.254", HTTP_X_FORWARDED_FOR="1.2.3.4, 198.51.100.7")
    from django.contrib.auth.models import AnonymousUser

    request.user = AnonymousUser()
    assert ratelimit.client_ident(request) == "ip:198.51.100.7"


def test_on_redis_one_round_trip_counts_an_attempt_and_the_window_expires():
    """Issue 17: the ask POST's limiter took three Redis round trips (SET NX, EXISTS,
    INCRBY); now one script. The window still ends after its period, and refund()
    and reset() still reach the same counter."""
    from django.core.cache import caches
    from django.core.cache.backends.redis import RedisCache

    if not isinstance(caches["default"], RedisCache):
        pytest.skip("needs Redis as the cache (set REDIS_URL)")
    backend = caches["default"]
    key = backend.make_and_validate_key(ratelimit._cache_key("unit-redis", "ip:10.0.0.9", 60))
    client = backend._cache.get_client(key, write=True)
    ratelimit.hit("unit-redis", "ip:10.0.0.9", 2, 60)  # the script loaded, as after any first count
    ratelimit.reset("unit-redis", "ip:10.0.0.9", 60)
    # Each command (or pipeline) takes a connection from the pool once: a round trip.
    sent = []
    original = client.connection_pool.get_connection

    def counting(*args, **kwargs):
        sent.append(1)
        return original(*args, **kwargs)

    client.connection_pool.get_connection = counting
    try:
        assert ratelimit.hit("unit-redis", "ip:10.0.0.9", 2, 60) is True
    finally:
        client.connection_pool.get_connection = original
    assert len(sent) == 1
    assert 0 < client.ttl(key) <= 60
    assert ratelimit.hit("unit-redis", "ip:10.0.0.9", 2, 60) is True
    ratelimit.refund("unit-redis", "ip:10.0.0.9", 60)  # the second one failed on our side
    assert ratelimit.hit("unit-redis", "ip:10.0.0.9", 2, 60) is True
    assert ratelimit.hit("unit-redis", "ip:10.0.0.9", 2, 60) is False
    ratelimit.reset("unit-redis", "ip:10.0.0.9", 60)
    assert client.exists(key) == 0


def test_on_redis_a_refund_to_zero_keeps_the_windows_end():
    """The count's script starts a window only when none is running: an attempt given
    back (refund) to 0 does not give the next one a fresh window."""
    from django.core.cache import caches
    from django.core.cache.backends.redis import RedisCache

    if not isinstance(caches["default"], RedisCache):
        pytest.skip("needs Redis as the cache (set REDIS_URL)")
    backend = caches["default"]
    key = backend.make_and_validate_key(ratelimit._cache_key("unit-refund", "ip:10.0.0.8", 600))
    client = backend._cache.get_client(key, write=True)
    ratelimit.reset("unit-refund", "ip:10.0.0.8", 600)
    assert ratelimit.hit("unit-refund", "ip:10.0.0.8", 1, 600) is True
    client.expire(key, 100)  # the window is well under way
    ratelimit.refund("unit-refund", "ip:10.0.0.8", 600)
    assert ratelimit.hit("unit-refund", "ip:10.0.0.8", 1, 600) is True
    assert 0 < client.ttl(key) <= 100, "the refund gave the next attempt a new window"
    assert ratelimit.hit("unit-refund", "ip:10.0.0.8", 1, 600) is False
    ratelimit.reset("unit-refund", "ip:10.0.0.8", 600)
