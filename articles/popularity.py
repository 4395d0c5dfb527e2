"""Counting article views without a database write per page view.

A view adds one to a counter in Redis (HINCRBY on a hash field
"<article id>:<UTC day>"); the periodic `flush_view_counts` task moves the
counts into `ArticleViewDay` rows and `Article.view_count`. Without Redis (local
SQLite set-up) the counts wait in a per-process buffer that the same process
flushes at most once a minute, so no worker ever has to see another process's
memory. When Redis is unreachable the counts wait in that same buffer: a
warning is logged (at most once a minute), the page still renders, and for a
few seconds after a failure Redis is not even tried, so a dead server does not
slow every page view. "Most popular" ranks by the views of the last 30 days.

A visitor counts once per article per day, and one network address for at
most MAX_VISITORS_PER_ADDRESS visitors per article per day (a household or an
office shares one; a script that changes its browser name does not become
many readers). Visitors are told apart without keeping personal data: Redis
holds only a keyed hash of the address and browser, made with a key derived
from SECRET_KEY and the day (computed, never stored), for 24 hours. The next
day's key is different, so one day's hashes cannot be linked to another's.
"""

import ipaddress
import logging
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import date, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, IntegerField, Q, QuerySet, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.crypto import salted_hmac

from articles.cache import CACHE_ERRORS, Outage
from articles.models import Article, ArticleViewDay

logger = logging.getLogger(__name__)

POPULAR_DAYS = 30
LOCAL_FLUSH_SECONDS = 60
ABANDONED_BATCH_SECONDS = 600
# How long Redis remembers that a visitor has seen an article today.
SEEN_SECONDS = 24 * 3600
MAX_VISITORS_PER_ADDRESS = 10
# The in-process fallback forgets everything past this many entries (a bound, not a goal).
LOCAL_SEEN_LIMIT = 100_000

# The once-a-day rule, atomic: count the view (HINCRBY on the pending hash) only
# for a visitor not seen today on this article, and only while the address is
# under its ceiling. Shared with the early page script (articles.cache.SERVE_LUA),
# which counts a stored article page's view in the same round trip that reads it.
COUNT_LUA = """
local function count_view(seen, address, pending, field, ttl, ceiling)
  if redis.call('SET', seen, '1', 'NX', 'EX', ttl) then
    local n = redis.call('INCR', address)
    if n == 1 then redis.call('EXPIRE', address, ttl) end
    if n <= tonumber(ceiling) then
      redis.call('HINCRBY', pending, field, 1)
      return 1
    end
  end
  return 0
end
"""
COUNT_SCRIPT = COUNT_LUA + "return count_view(KEYS[1], KEYS[2], KEYS[3], ARGV[2], ARGV[1], ARGV[3])\n"

_redis_client = None
_redis_client_url = ""
_redis_lock = threading.Lock()
redis_outage = Outage("Redis for article view counts", logger)


def _key(name: str) -> str:
    prefix = settings.CACHES["default"].get("KEY_PREFIX", "portal")
    return f"{prefix}:articles:views:{name}"


def pending_key() -> str:
    return _key("pending")


def visitor_key_prefixes(day: date) -> tuple[str, str]:
    """The day's "seen" and "address" key names up to the article id (see _count_in_redis)."""
    return _key(f"seen:{day.isoformat()}:"), _key(f"address:{day.isoformat()}:")


def redis_client():
    """A shared client, or None when the portal runs without Redis."""
    global _redis_client, _redis_client_url
    url = settings.REDIS_URL
    if not url:
        return None
    with _redis_lock:
        if _redis_client is None or _redis_client_url != url:
            import redis

            timeout = settings.REDIS_TIMEOUT_SECONDS
            _redis_client = redis.Redis.from_url(
                url, socket_connect_timeout=timeout, socket_timeout=timeout, health_check_interval=30
            )
            _redis_client_url = url
    return _redis_client


class LocalBuffer:
    """The no-Redis fallback: counts held in this process, flushed by it."""

    def __init__(self):
        self.counts: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.last_flush = time.monotonic()

    def add(self, field: str) -> None:
        with self.lock:
            self.counts[field] += 1

    def take(self) -> dict[str, int]:
        with self.lock:
            counts, self.counts = dict(self.counts), Counter()
            self.last_flush = time.monotonic()
        return counts

    def due(self) -> bool:
        return bool(self.counts) and time.monotonic() - self.last_flush >= LOCAL_FLUSH_SECONDS


local_buffer = LocalBuffer()


@dataclass(frozen=True)
class Visitor:
    """Who viewed, as two keyed hashes that are only good for one day."""

    browser: str  # the address and the browser's name
    address: str  # the address alone (an IPv6 /64, which one household holds)
    day: date | None = None  # the day these hashes are good for


def _network(ip: str) -> str:
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def visitor(ip: str, user_agent: str, day: date) -> Visitor:
    """The day's pseudonyms of a visitor. The key is derived from SECRET_KEY and
    the day each time, never stored; only the truncated hashes reach Redis."""
    salt = f"articles.popularity.visitor:{day.isoformat()}"
    network = _network(ip)
    return Visitor(
        browser=salted_hmac(salt, f"{network}\n{user_agent}", algorithm="sha256").hexdigest()[:32],
        address=salted_hmac(salt, network, algorithm="sha256").hexdigest()[:32],
        day=day,
    )


def visitor_from_request(request, now=None) -> Visitor:
    from portal.client_address import client_ip

    now = now or timezone.now()
    return visitor(client_ip(request), request.headers.get("User-Agent", "")[:512], now.date())


class LocalSeen:
    """The no-Redis fallback of the once-a-day rule, for this process's views."""

    def __init__(self):
        self.lock = threading.Lock()
        self.seen: set[str] = set()
        self.per_address: Counter[str] = Counter()
        self.day: date | None = None

    def first_view(self, article_id: int, who: Visitor, day: date) -> bool:
        with self.lock:
            if self.day != day or len(self.seen) >= LOCAL_SEEN_LIMIT:
                self.seen, self.per_address, self.day = set(), Counter(), day
            key = f"{article_id}:{who.browser}"
            if key in self.seen:
                return False
            self.seen.add(key)
            self.per_address[f"{article_id}:{who.address}"] += 1
            return self.per_address[f"{article_id}:{who.address}"] <= MAX_VISITORS_PER_ADDRESS


local_seen = LocalSeen()


def _count_in_redis(client, field: str, article_id: int, who: Visitor | None, day: date) -> None:
    if who is None:
        client.hincrby(pending_key(), field, 1)
        return
    seen, address = visitor_key_prefixes(day)
    client.eval(
        COUNT_SCRIPT,
        3,
        f"{seen}{article_id}:{who.browser}",
        f"{address}{article_id}:{who.address}",
        pending_key(),
        SEEN_SECONDS,
        field,
        MAX_VISITORS_PER_ADDRESS,
    )


def count_in(client, article_id: int, who: Visitor) -> None:
    """Count `who`'s view of the article on their day by the once-a-day rule, on `client`
    (a Redis client or pipeline: articles.local_pages sends queued views in one batch)."""
    _count_in_redis(client, f"{article_id}:{who.day.isoformat()}", article_id, who, who.day)


def record_view(article_id: int, who: Visitor | None = None, now=None) -> None:
    """Count one view: once per visitor per article per day when `who` is given.

    An unreachable Redis never breaks the page: the view waits in this process.
    """
    now = now or timezone.now()
    day = now.date()
    field = f"{article_id}:{day.isoformat()}"
    client = redis_client()
    if client is not None and not redis_outage.active():
        try:
            _count_in_redis(client, field, article_id, who, day)
            return
        except CACHE_ERRORS as error:  # Redis down: keep the count in this process instead
            redis_outage.failed("counting a view", error)
    if who is not None and not local_seen.first_view(article_id, who, day):
        return
    local_buffer.add(field)
    if local_buffer.due():
        try:
            apply_counts(local_buffer.take())
        except Exception:  # noqa: BLE001 - the page must still render
            logger.exception("Flushing locally buffered article views failed")


def _parse(counts: dict) -> dict[tuple[int, date], int]:
    parsed: dict[tuple[int, date], int] = {}
    for raw_field, raw_count in counts.items():
        field = raw_field.decode() if isinstance(raw_field, bytes) else str(raw_field)
        try:
            article_id, day = field.split(":", 1)
            key = (int(article_id), date.fromisoformat(day))
            parsed[key] = parsed.get(key, 0) + int(raw_count)
        except ValueError:
            logger.warning("Ignoring malformed view counter %r", field)
    return parsed


def apply_counts(counts: dict) -> int:
    """Add counts {"<article id>:<day>": n} to the database. Returns views added."""
    parsed = _parse(counts)
    existing = set(Article.objects.filter(pk__in={article_id for article_id, _ in parsed}).values_list("pk", flat=True))
    added = 0
    with transaction.atomic():
        for (article_id, day), views in sorted(parsed.items()):
            if article_id not in existing or views <= 0:
                continue
            _add_day(article_id, day, views)
            Article.objects.filter(pk=article_id).update(view_count=F("view_count") + views)
            added += views
    return added


def _add_day(article_id: int, day: date, views: int) -> None:
    updated = ArticleViewDay.objects.filter(article_id=article_id, day=day).update(views=F("views") + views)
    if updated:
        return
    try:
        with transaction.atomic():
            ArticleViewDay.objects.create(article_id=article_id, day=day, views=views)
    except IntegrityError:
        # Another flush created the row between our update and insert.
        ArticleViewDay.objects.filter(article_id=article_id, day=day).update(views=F("views") + views)


def flush_view_counts(now=None) -> int:
    """Move buffered views into the database. Safe to run from several workers at once."""
    from articles.local_pages import local_pages

    local_pages.flush_views()  # views this process answered from its own copies, not yet sent
    now_ts = int((now or timezone.now()).timestamp())
    added = apply_counts(local_buffer.take()) if local_buffer.counts else 0
    client = redis_client()
    if client is None:
        return added
    try:
        return added + _flush_redis(client, now_ts)
    except CACHE_ERRORS as error:
        # The counts stay in Redis (a claimed batch is recovered once abandoned); the next flush moves them.
        redis_outage.failed("flushing view counts", error)
        return added


def _flush_redis(client, now_ts: int) -> int:
    added = 0
    # RENAME is atomic: views counted from now on go to a fresh hash, and each
    # batch belongs to exactly one flusher.
    mine = _claim(client, pending_key(), now_ts)
    if mine:
        added += _flush_batch(client, mine)
    # A batch left behind by a crashed flusher is claimed (again by RENAME) once
    # it is clearly abandoned, so a live flusher's batch is never counted twice.
    for key in client.scan_iter(match=_key("flushing:*"), count=100):
        key = key.decode() if isinstance(key, bytes) else key
        try:
            started = int(key.rsplit(":", 2)[-2])
        except ValueError:
            started = 0
        if now_ts - started >= ABANDONED_BATCH_SECONDS:
            claimed = _claim(client, key, now_ts)
            if claimed:
                added += _flush_batch(client, claimed)
    return added


def _claim(client, source: str, now_ts: int) -> str | None:
    batch = _key(f"flushing:{now_ts}:{uuid.uuid4().hex}")
    try:
        client.rename(source, batch)
    except Exception as exc:
        if "no such key" in str(exc).lower():
            return None  # nothing viewed, or another flusher took it
        raise
    return batch


def _flush_batch(client, key: str) -> int:
    added = apply_counts(client.hgetall(key))
    client.delete(key)
    return added


def popular_articles(limit: int = 5, now=None, exclude_id: int | None = None) -> QuerySet[Article]:
    """Published articles ranked by views in the last POPULAR_DAYS days, newest first on ties."""
    now = now or timezone.now()
    since = now.date() - timedelta(days=POPULAR_DAYS)
    articles = (
        Article.objects.published()
        .for_cards()
        .annotate(
            recent_views=Coalesce(
                Sum("view_days__views", filter=Q(view_days__day__gte=since)),
                Value(0),
                output_field=IntegerField(),
            )
        )
        .order_by("-recent_views", "-published_at", "pk")
    )
    if exclude_id is not None:
        articles = articles.exclude(pk=exclude_id)
    return articles[:limit]
