"""Cache for the public article pages, invalidated by a version number.

Every cached piece's key carries the current content version; any change to an
article, its tags or sources bumps the version, so all cached pieces become
unreachable at once (they expire on their own). Works the same on Redis and on
the local-memory cache.
"""

import time
from collections.abc import Callable
from hashlib import sha256
from typing import TypeVar

from django.core.cache import cache

VERSION_KEY = "articles:content-version"
DEFAULT_TIMEOUT = 600
T = TypeVar("T")


def _fresh_version() -> int:
    # Milliseconds: if the version key is ever evicted, the new number is still
    # above every earlier one, so no stale piece can be reached again.
    return time.time_ns() // 1_000_000


def content_version() -> int:
    version = cache.get(VERSION_KEY)
    if version is None:
        # add() so two processes starting at once agree on the number.
        cache.add(VERSION_KEY, _fresh_version(), timeout=None)
        version = cache.get(VERSION_KEY) or _fresh_version()
    return int(version)


def bump_version() -> None:
    """Make every cached article piece stale (called when any article changes)."""
    try:
        cache.incr(VERSION_KEY)
    except ValueError:
        cache.add(VERSION_KEY, _fresh_version(), timeout=None)


def key_for(*parts) -> str:
    raw = ":".join(str(part) for part in parts)
    digest = sha256(raw.encode()).hexdigest()[:32]
    return f"articles:v{content_version()}:{digest}"


def cached(parts: tuple, build: Callable[[], T], timeout: int = DEFAULT_TIMEOUT) -> T:
    key = key_for(*parts)
    value = cache.get(key)
    if value is None:
        value = build()
        cache.set(key, value, timeout)
    return value
