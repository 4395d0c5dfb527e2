"""The cache backend keeps one redis.Redis per connection pool (portal/redis_cache.py):
Django's built a new one, with its table of reply callbacks, on every cache call."""

import os

import pytest
from django.conf import settings

from portal.redis_cache import RedisCache

pytestmark = pytest.mark.skipif(not settings.REDIS_URL, reason="the local set-up has no Redis")


def make_cache() -> RedisCache:
    return RedisCache(settings.REDIS_URL, {"KEY_PREFIX": f"test-redis-cache-{os.getpid()}"})


def test_every_call_uses_the_same_client():
    cache = make_cache()
    first = cache._cache.get_client("a")
    assert cache._cache.get_client("b", write=True) is first


def test_the_reused_client_still_does_what_the_cache_promises():
    cache = make_cache()
    try:
        cache.set("k", {"x": 1}, 30)
        assert cache.get("k") == {"x": 1}
        assert cache.add("k", "other", 30) is False
        assert cache.add("n", 1, 30) is True
        assert cache.incr("n") == 2
        cache.delete("k")
        assert cache.get("k") is None
    finally:
        cache.delete_many(["k", "n"])


def test_a_forked_child_gets_its_own_connections():
    """The pool, not the client, holds the connections; it notices a fork by its pid."""
    cache = make_cache()
    cache.set("fork", "parent", 30)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: the same client object, over the pool's fresh connections
        try:
            os.write(write, b"ok" if cache.get("fork") == "parent" else b"no")
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    assert os.read(read, 2) == b"ok"
    assert cache.get("fork") == "parent"
    cache.delete("fork")
