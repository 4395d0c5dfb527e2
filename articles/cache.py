"""Cache for the public article pages, invalidated by a version number, and safe
when the cache server is down.

Every cached piece (the data behind a page, and whole rendered pages for
anonymous visitors) is tied to the current content version; any change to an
article, its tags or sources bumps the version, so everything cached earlier
becomes unreachable at once (and expires on its own). Works the same on Redis
and on the local-memory cache.

Redis may be unreachable. Then every function here fails open: a read is a
miss, a write is skipped, pages are built from the database; a warning is
logged at most once a minute per process, and after a failure the process
leaves the cache alone for a few seconds, so a dead server costs one timeout
rather than one per call. A version bump that could not be written is
retried as soon as this process reaches the cache again.
"""

import logging
import threading
import time
from collections.abc import Callable
from hashlib import sha256
from typing import TypeVar
from urllib.parse import urlencode

from django.conf import settings
from django.core.cache import cache

logger = logging.getLogger(__name__)

VERSION_KEY = "articles:content-version"
DEFAULT_TIMEOUT = 600
# Whole pages show "most popular", which moves with every flush of the view
# counts (selectors.POPULAR_TIMEOUT), so they are kept no longer than that.
PAGE_TIMEOUT = 300
T = TypeVar("T")


def _cache_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [OSError]
    try:
        from redis.exceptions import RedisError
    except ImportError:  # the local set-up needs no Redis client library
        pass
    else:
        errors.append(RedisError)
    return tuple(errors)


# What an unreachable or failing cache server raises (connection refused,
# timeouts, a server that answers with an error). Anything else is a bug and
# is not swallowed.
CACHE_ERRORS = _cache_errors()


class Outage:
    """One process's memory of a failing server: skip it briefly, warn rarely."""

    RETRY_AFTER_SECONDS = 5.0
    WARN_EVERY_SECONDS = 60.0

    def __init__(self, what: str, log: logging.Logger = logger):
        self.what = what
        self.log = log
        self.until = 0.0
        self.last_warning = float("-inf")
        self.lock = threading.Lock()

    def active(self) -> bool:
        return time.monotonic() < self.until

    def failed(self, action: str, error: BaseException) -> None:
        now = time.monotonic()
        with self.lock:
            self.until = now + self.RETRY_AFTER_SECONDS
            warn = now - self.last_warning >= self.WARN_EVERY_SECONDS
            if warn:
                self.last_warning = now
        if warn:
            self.log.warning(
                "%s unavailable (%s failed: %s: %s); carrying on without it",
                self.what,
                action,
                type(error).__name__,
                error,
            )

    def reset(self) -> None:
        with self.lock:
            self.until = 0.0
            self.last_warning = float("-inf")


outage = Outage("Article cache")
_bump_pending = threading.Event()


def _attempt(action: str, operation: Callable[[], T], fallback: T, *, during_outage: bool = False) -> T:
    if outage.active() and not during_outage:
        return fallback
    try:
        return operation()
    except CACHE_ERRORS as error:
        outage.failed(action, error)
        return fallback


def _fresh_version() -> int:
    # Milliseconds: if the version key is ever evicted, the new number is still
    # above every earlier one, so no stale piece can be reached again.
    return time.time_ns() // 1_000_000


def _read_version() -> int:
    version = cache.get(VERSION_KEY)
    if version is None:
        # add() so two processes starting at once agree on the number.
        cache.add(VERSION_KEY, _fresh_version(), timeout=None)
        version = cache.get(VERSION_KEY) or _fresh_version()
        _announce(int(version))
    return int(version)


def _announce(version: int) -> None:
    """Tell every web process's copies (articles.local_pages) that the version is now `version`."""
    from articles.local_pages import channel, local_pages

    local_pages.follow(version)
    server = _page_server()
    if server is not None:
        server.publish(channel(), version)


def current_version_on(server) -> int | None:
    """The content version as stored on Redis, or None if there is none yet (nothing created)."""
    raw = server.get(cache.make_key(VERSION_KEY))
    return int(raw) if raw is not None else None


def _replay_failed_bump() -> None:
    # An article changed while the cache was unreachable: whatever the cache
    # still holds from before may be stale, so retire it before reading.
    if _bump_pending.is_set() and not outage.active():
        bump_version()


def content_version() -> int | None:
    """The current version, or None while the cache cannot be reached."""
    _replay_failed_bump()
    return _attempt("reading the content version", _read_version, None)


def _bump() -> bool:
    try:
        version = cache.incr(VERSION_KEY)
    except ValueError:  # no version yet (or evicted): any fresh one is newer
        cache.add(VERSION_KEY, _fresh_version(), timeout=None)
        version = cache.get(VERSION_KEY)
    if version is not None:
        _announce(int(version))
    return True


def bump_version() -> None:
    """Make every cached article piece stale (called when any article changes).

    Tried even while the cache is thought to be down: a lost bump would keep
    serving an article that was just corrected or withdrawn.
    """
    _bump_pending.set()
    from articles.local_pages import local_pages

    local_pages.forget()  # this process's copies at once, whatever Redis says
    if _attempt("bumping the content version", _bump, False, during_outage=True):
        _bump_pending.clear()


def _digest(raw: str) -> str:
    return sha256(raw.encode()).hexdigest()[:32]


def key_for(version: int, *parts) -> str:
    return f"articles:v{version}:{_digest(':'.join(str(part) for part in parts))}"


def cached(parts: tuple, build: Callable[[], T], timeout: int = DEFAULT_TIMEOUT) -> T:
    """`build()`'s result, kept under the content version; built fresh when the cache is down."""
    version = content_version()
    if version is None:
        return build()
    key = key_for(version, *parts)
    value = _attempt("reading a cached piece", lambda: cache.get(key), None)
    if value is None:
        value = build()
        if value is not None:
            _attempt("storing a cached piece", lambda: cache.set(key, value, timeout), None)
    return value


# --- Whole pages for anonymous visitors -----------------------------------------------


def page_key(path: str, query: list[tuple[str, str]]) -> str:
    """One key per path and query; `query` holds only the parameters the page reads, in a fixed order."""
    return f"articles:page:{_digest(path + '?' + urlencode(query))}"


def get_page(key: str, viewer=None) -> tuple[int | None, tuple | None]:
    """(current content version, stored page) in one round trip.

    The page is None when it is missing, was built from older content, or has
    passed the time it was valid until; the version is None when the cache is
    unreachable (the caller then neither reads nor stores pages).

    With a `viewer` (articles.popularity.Visitor), a stored article page is
    also counted as that visitor's view (popularity's once-a-day rule), on
    Redis in the same round trip; the caller must not count it again.
    """
    _replay_failed_bump()
    if outage.active():
        return None, None
    server = _page_server()
    try:
        if server is not None:
            found = _read_on_redis(server, key, viewer)
        else:
            found = cache.get_many([VERSION_KEY, key])
            found = (found.get(VERSION_KEY), found.get(key))
    except CACHE_ERRORS as error:
        outage.failed("reading a cached page", error)
        return None, None
    version, entry = found
    if version is None:
        return content_version(), None
    if entry is None or entry[0] != int(version) or entry[1] <= time.time():
        return int(version), None
    if server is not None:
        from articles.local_pages import local_pages

        local_pages.keep(key, entry)
    elif viewer is not None and entry[4] is not None:
        from articles import popularity

        popularity.record_view(entry[4], viewer)
    return int(version), entry[2:]


def put_page(key: str, version: int, payload: tuple, valid_seconds: float = PAGE_TIMEOUT) -> None:
    """Keep a rendered page for `valid_seconds` (at most PAGE_TIMEOUT) under `version`.

    A page built while the version moved on is stored under the version it
    started with, so it is never served: edits always win.
    """
    valid_seconds = min(valid_seconds, PAGE_TIMEOUT)
    if valid_seconds <= 0:
        return
    entry = (version, time.time() + valid_seconds, *payload)
    server = _page_server()
    if server is not None:
        _attempt(
            "storing a cached page",
            lambda: server.set(cache.make_key(key, version=RAW_PAGE_FORMAT), _encode(entry), ex=int(valid_seconds) + 1),
            None,
        )
    else:
        _attempt("storing a cached page", lambda: cache.set(key, entry, int(valid_seconds) + 1), None)


# --- Whole pages on Redis: read, checked and counted in one round trip ---------------------
# A stored page is one plain string, "<version> <valid until> <article id or 0> <content
# type>\n<body>", rather than the cache's pickle, so that a server-side script can check
# it against the current version and count the visitor's view of its article before
# answering (the once-a-day rule, popularity.COUNT_LUA). Keys carry the cache's prefix,
# so cache.clear() and the cache's namespace cover them as before, and the cache's key
# version RAW_PAGE_FORMAT, so a process still running the pickling code (a rolling
# deploy) never reads a page in this format, nor this code one of its pickles.
RAW_PAGE_FORMAT = 2

# KEYS: the version, the page, the pending view counts. ARGV: now, then, to count a view,
# the visitor's seen-key and address-key prefixes (up to the article id), the day, the
# seconds a visitor is remembered and the visitors-per-address ceiling.
SERVE_LUA = """
local version = redis.call('GET', KEYS[1])
if not version then return {false, false} end
local page = redis.call('GET', KEYS[2])
if not page then return {version, false} end
local stored, valid_until, article = string.match(page, '^(%d+) (%S+) (%d+) ')
if stored ~= version or tonumber(valid_until) <= tonumber(ARGV[1]) then return {version, false} end
if ARGV[2] and article ~= '0' then
  count_view(ARGV[2] .. article .. ':' .. ARGV[4], ARGV[3] .. article .. ':' .. ARGV[5],
             KEYS[3], article .. ':' .. ARGV[6], ARGV[7], ARGV[8])
end
return {version, page}
"""
_serve_script = None


def _page_server():
    """The Redis client of this process when the default cache is that Redis, else None."""
    config = settings.CACHES["default"]
    if not config["BACKEND"].endswith(".RedisCache") or config.get("LOCATION") != settings.REDIS_URL:
        return None
    from articles import popularity

    return popularity.redis_client()


def _encode(entry: tuple) -> bytes:
    version, valid_until, content_type, content, article_id = entry
    return b"%d %.3f %d %s\n" % (version, valid_until, article_id or 0, content_type.encode()) + bytes(content)


def _decode(raw: bytes) -> tuple:
    header, _, content = raw.partition(b"\n")
    version, valid_until, article_id, content_type = header.decode().split(" ", 3)
    return int(version), float(valid_until), content_type, content, int(article_id) or None


def _read_on_redis(server, key: str, viewer) -> tuple:
    from articles import popularity

    global _serve_script
    if _serve_script is None:  # sent by its SHA1 (EVALSHA), loaded into the server when missing
        _serve_script = server.register_script(popularity.COUNT_LUA + SERVE_LUA)
    args = [time.time()]
    if viewer is not None:
        args += [*popularity.visitor_key_prefixes(viewer.day), viewer.browser, viewer.address, viewer.day.isoformat()]
        args += [popularity.SEEN_SECONDS, popularity.MAX_VISITORS_PER_ADDRESS]
    keys = [cache.make_key(VERSION_KEY), cache.make_key(key, version=RAW_PAGE_FORMAT), popularity.pending_key()]
    version, raw = _serve_script(keys=keys, args=args, client=server)
    return version, (_decode(raw) if raw is not None else None)
