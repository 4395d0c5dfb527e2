"""No Redis client may wait long on a hung server: a patient's request talks to the
cache (rate limits) and to the broker (publishing the e-mail) and must not hang."""

import pytest
from django.conf import settings

from articles import popularity
from portal.celery import app

pytestmark = pytest.mark.skipif(not settings.REDIS_URL, reason="the local set-up has no Redis client")

ABOUT_A_SECOND = 1.0


def test_every_redis_client_has_short_connect_and_reply_timeouts(monkeypatch):
    """Issue 13 item 6: socket and connect timeouts on the cache, the broker and the
    view counters' own client (before: 2 s for the cache, 5 s per broker try)."""
    cache_options = settings.CACHES["default"]["OPTIONS"]
    broker_options = app.conf.broker_transport_options
    monkeypatch.setattr(popularity, "_redis_client", None)
    counters = popularity.redis_client().connection_pool.connection_kwargs
    for options in (cache_options, broker_options, counters):
        assert 0 < options["socket_connect_timeout"] <= ABOUT_A_SECOND
        assert 0 < options["socket_timeout"] <= ABOUT_A_SECOND
    assert not app.conf.result_backend  # no result backend: nothing else talks to Redis


def test_a_failed_publish_is_retried_once_without_waiting():
    """Issue 13 item 6: Celery's default retries a publish three times; against a hung
    broker each try costs a full timeout, so the web side tries twice in all."""
    policy = app.conf.task_publish_retry_policy
    assert policy["max_retries"] <= 1
    assert policy["interval_start"] == 0
    assert (policy["max_retries"] + 1) * broker_timeout() <= 2 * ABOUT_A_SECOND


def broker_timeout() -> float:
    return app.conf.broker_transport_options["socket_timeout"]
