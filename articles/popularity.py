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
"""

import logging
import threading
import time
import uuid
from collections import Counter
from datetime import date, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, IntegerField, Q, QuerySet, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from articles.cache import CACHE_ERRORS, Outage
from articles.models import Article, ArticleViewDay

logger = logging.getLogger(__name__)

POPULAR_DAYS = 30
LOCAL_FLUSH_SECONDS = 60
ABANDONED_BATCH_SECONDS = 600

_redis_client = None
_redis_client_url = ""
_redis_lock = threading.Lock()
redis_outage = Outage("Redis for article view counts", logger)


def _key(name: str) -> str:
    prefix = settings.CACHES["default"].get("KEY_PREFIX", "portal")
    return f"{prefix}:articles:views:{name}"


def pending_key() -> str:
    return _key("pending")


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


def record_view(article_id: int, now=None) -> None:
    """Count one view. An unreachable Redis never breaks the page: the view waits in this process."""
    now = now or timezone.now()
    field = f"{article_id}:{now.date().isoformat()}"
    client = redis_client()
    if client is not None and not redis_outage.active():
        try:
            client.hincrby(pending_key(), field, 1)
            return
        except CACHE_ERRORS as error:  # Redis down: keep the count in this process instead
            redis_outage.failed("counting a view", error)
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
