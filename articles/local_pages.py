"""Each web process's own copy of the shared pages, kept exact by Redis pub/sub.

Measured side by side with the bare-Django app, the early page answer
(articles/middleware.py) spent most of its time on its one Redis round trip:
without it the same answer runs at 80-90% of the bare "ok" view, with it at
50-65%. So a process keeps the copies it has read, and its article views are
sent to Redis in batches, off the request path:

- Freshness. Every change of the content version is published on a channel
  (articles.cache publishes after each bump, and when it creates a version).
  A listener thread in each process subscribes first, then reads the version,
  and from then on follows the channel. A copy is answered from memory only
  when it was stored under the version the listener holds and is still within
  its valid time. While the listener is not subscribed (starting, Redis down,
  connection lost) the process holds no version and answers nothing from
  memory: every request reads Redis as before. The listener pings Redis every
  PING_SECONDS and copies are served only while it heard from Redis within
  SILENCE_SECONDS, so a connection that died without a word (a partition)
  turns memory off within that time. A version change reaches the processes
  within the time Redis takes to deliver a message (well under a millisecond
  on one machine); a bump made by this process clears its copies at once.
- Views. A view answered from memory is queued with its visitor's day hashes
  and counted by the same thread within FLUSH_SECONDS, by the same script and
  keys as on the request path (popularity.COUNT_SCRIPT: once per visitor per
  article per day, at most MAX_VISITORS_PER_ADDRESS per address). A visitor
  already queued today for that article is not queued again (the script
  would refuse it). If Redis
  cannot be reached, the queued views go to popularity's in-process fallback,
  as a request's view would. A process that exits flushes its queue first
  (atexit); one killed outright loses at most FLUSH_SECONDS of views.

Only with the Redis cache (articles.cache._page_server); the local-memory
cache is already in the process.
"""

import atexit
import logging
import os
import threading
import time
from datetime import UTC, datetime

from articles import cache as article_cache

logger = logging.getLogger(__name__)

FLUSH_SECONDS = 0.5
RETRY_SECONDS = 2.0
PING_SECONDS = 1.0
SILENCE_SECONDS = 2.5
PAGE_LIMIT = 2000  # copies kept per process (a bound, not a goal)
QUEUE_LIMIT = 50_000  # queued views before a request flushes them itself
SEEN_LIMIT = 100_000  # visitors remembered as already queued today (a bound, not a goal)


def channel() -> str:
    from django.core.cache import cache

    return cache.make_key("articles:content-version:changed")


class LocalPages:
    def __init__(self):
        self.lock = threading.Lock()
        self.sending = threading.Lock()
        self.version: int | None = None  # None: not following the channel; nothing served from memory
        self.server = None  # the Redis client whose channel the listener follows
        self.channel = ""
        self.heard = float("-inf")  # when Redis last answered the listener (monotonic)
        self.pages: dict[str, tuple] = {}
        self.views: list[tuple] = []
        self.queued: set[tuple] = set()  # (article id, browser hash, day) sent or waiting
        self.pid: int | None = None
        self.stop = threading.Event()

    # --- The request side ---------------------------------------------------------------

    def get(self, key: str) -> tuple | None:
        """A stored entry (version, valid until, content type, content, article id) or None."""
        self._ensure_listener()
        version, entry = self.version, self.pages.get(key)
        if version is None or entry is None or entry[0] != version or entry[1] <= time.time():
            return None
        if time.monotonic() - self.heard > SILENCE_SECONDS or self.channel != channel():
            return None
        if article_cache._page_server() is not self.server:
            return None
        return entry

    def keep(self, key: str, entry: tuple) -> None:
        with self.lock:
            if self.version is None or entry[0] != self.version:
                return
            if len(self.pages) >= PAGE_LIMIT:
                self.pages.clear()
            self.pages[key] = entry

    def count_later(self, article_id: int, viewer) -> None:
        seen = (article_id, viewer.browser, viewer.day)
        with self.lock:
            # Queued (so counted or refused) once today already: Redis would refuse it again.
            if seen in self.queued:
                return
            if len(self.queued) >= SEEN_LIMIT:
                self.queued.clear()
            self.queued.add(seen)
            self.views.append((article_id, viewer, time.time()))
            full = len(self.views) >= QUEUE_LIMIT
        if full:
            self.flush_views()

    # --- Version changes ------------------------------------------------------------------

    def follow(self, version: int | None) -> None:
        """The content version is now `version` (None: unknown): forget older copies."""
        with self.lock:
            if version is not None and self.version is not None and version <= self.version:
                return  # messages from several publishers may arrive out of order
            self.version = version
            self.pages.clear()

    def forget(self) -> None:
        with self.lock:
            self.version = None
            self.heard = float("-inf")
            self.pages.clear()

    # --- The listener thread --------------------------------------------------------------

    def _ensure_listener(self) -> None:
        pid = os.getpid()
        if self.pid == pid:
            return
        with self.lock:
            if self.pid == pid:
                return
            # A forked child: neither the parent's thread nor its copies are ours.
            self.pid, self.version, self.pages, self.views, self.queued = pid, None, {}, [], set()
            thread = threading.Thread(target=self._listen, name="articles-local-pages", daemon=True)
            thread.start()

    def _listen(self) -> None:
        while not self.stop.is_set():
            server = article_cache._page_server()
            if server is None:
                self.forget()
                self.stop.wait(RETRY_SECONDS)
                continue
            try:
                self._follow_channel(server)
            except article_cache.CACHE_ERRORS as error:
                logger.debug("Local page copies off until Redis answers again: %s", error)
            except Exception:  # noqa: BLE001 - the thread must outlive any surprise
                logger.exception("Local page copies: listener failed")
            self.forget()
            self.flush_views()
            self.stop.wait(RETRY_SECONDS)

    def _follow_channel(self, server) -> None:
        followed = channel()
        pubsub = server.pubsub()
        try:
            pubsub.subscribe(followed)
            deadline = time.monotonic() + RETRY_SECONDS
            while (message := pubsub.get_message(timeout=0.1)) is None or message["type"] != "subscribe":
                if time.monotonic() > deadline:
                    return
            # Subscribed first, read second: no change can fall between the two.
            self.server, self.channel, self.heard = server, followed, time.monotonic()
            self.follow(article_cache.current_version_on(server))
            pinged = time.monotonic()
            while not self.stop.is_set() and article_cache._page_server() is server and channel() == followed:
                message = pubsub.get_message(timeout=FLUSH_SECONDS)
                if message is not None:
                    self.heard = time.monotonic()
                    if message["type"] == "message":
                        self.follow(int(message["data"]))
                if time.monotonic() - pinged >= PING_SECONDS:
                    pubsub.ping()
                    pinged = time.monotonic()
                self.flush_views()
        finally:
            self.forget()
            pubsub.close()

    def flush_views(self) -> None:
        """Send the queued views; on return every view queued before the call is in Redis
        (or in popularity's fallback), whichever thread was sending them."""
        with self.sending:
            with self.lock:
                views, self.views = self.views, []
            if views:
                _count(views)

    def _after_fork(self) -> None:
        # A lock held by a thread of the parent at fork time would stay held in the child.
        self.lock, self.sending = threading.Lock(), threading.Lock()


def _count(views: list[tuple]) -> None:
    from articles import popularity

    server = article_cache._page_server()
    try:
        if server is None or popularity.redis_outage.active():
            raise ConnectionError("Redis for view counts unavailable")
        pipe = server.pipeline(transaction=False)
        for article_id, viewer, _ in views:
            popularity.count_in(pipe, article_id, viewer)
        pipe.execute()
    except article_cache.CACHE_ERRORS as error:
        popularity.redis_outage.failed("counting views in a batch", error)
        for article_id, viewer, at in views:  # the in-process fallback, as for a request's view
            popularity.record_view(article_id, viewer, now=datetime.fromtimestamp(at, tz=UTC))


local_pages = LocalPages()
atexit.register(local_pages.flush_views)
os.register_at_fork(after_in_child=local_pages._after_fork)
