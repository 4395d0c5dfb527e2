"""View counting without a database write per view, and "most popular"."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from articles import popularity, tasks
from articles.models import ArticleViewDay
from tests.articles.factories import ArticleFactory

pytestmark = pytest.mark.django_db

needs_redis = pytest.mark.skipif(not settings.REDIS_URL, reason="needs REDIS_URL")


@pytest.fixture
def no_redis(settings):
    """The local set-up: no Redis, counts buffered in this process."""
    settings.REDIS_URL = ""
    popularity._redis_client = None
    yield
    popularity._redis_client = None


def _days(article):
    return {row.day: row.views for row in ArticleViewDay.objects.filter(article=article)}


def test_viewing_a_cached_page_writes_nothing_to_the_database(client, article, django_assert_num_queries):
    client.get(article.get_absolute_url())
    with django_assert_num_queries(0):
        client.get(article.get_absolute_url())
        client.get(article.get_absolute_url())
    assert not ArticleViewDay.objects.exists()


def test_flush_moves_views_into_the_day_table(client, article, doctor, reviewer, specialty):
    other = ArticleFactory(author=doctor, reviewer=reviewer, specialty=specialty)
    for n in range(3):
        client.get(article.get_absolute_url(), REMOTE_ADDR=f"192.0.2.{n + 1}")
    client.get(other.get_absolute_url())

    assert tasks.flush_view_counts.delay().get() == 4
    today = timezone.now().date()
    assert _days(article) == {today: 3}
    assert _days(other) == {today: 1}
    article.refresh_from_db()
    assert article.view_count == 3
    # Nothing is counted twice.
    assert popularity.flush_view_counts() == 0
    assert _days(article) == {today: 3}


def test_flush_adds_to_the_same_day_and_splits_days(article):
    day_one = timezone.now() - timedelta(days=1)
    popularity.record_view(article.pk, now=day_one)
    popularity.record_view(article.pk)
    popularity.flush_view_counts()
    popularity.record_view(article.pk)
    popularity.flush_view_counts()
    assert _days(article) == {day_one.date(): 1, timezone.now().date(): 2}


def test_views_of_a_deleted_article_are_dropped(article):
    popularity.record_view(article.pk)
    article_id = article.pk
    article.delete()
    assert popularity.flush_view_counts() == 0
    assert not ArticleViewDay.objects.filter(article_id=article_id).exists()


def test_most_popular_ranks_by_the_last_30_days(doctor, reviewer, specialty):
    today = timezone.now().date()
    once_famous = ArticleFactory(author=doctor, reviewer=reviewer, specialty=specialty, title="Once famous")
    trending = ArticleFactory(author=doctor, reviewer=reviewer, specialty=specialty, title="Trending")
    quiet = ArticleFactory(author=doctor, reviewer=reviewer, specialty=specialty, title="Quiet")
    draft = ArticleFactory(draft=True, author=doctor, specialty=specialty, title="Draft")
    ArticleViewDay.objects.create(article=once_famous, day=today - timedelta(days=45), views=1000)
    ArticleViewDay.objects.create(article=once_famous, day=today - timedelta(days=2), views=5)
    ArticleViewDay.objects.create(article=trending, day=today, views=40)
    ArticleViewDay.objects.create(article=trending, day=today - timedelta(days=29), views=10)
    ArticleViewDay.objects.create(article=draft, day=today, views=500)

    ranked = list(popularity.popular_articles(limit=5))
    assert ranked[:2] == [trending, once_famous]
    assert quiet in ranked
    assert draft not in ranked
    assert ranked[0].recent_views == 50


def test_article_page_shows_most_popular_block(client, article, doctor, reviewer, specialty):
    hit = ArticleFactory(author=doctor, reviewer=reviewer, specialty=specialty, title="Everyone reads this")
    ArticleViewDay.objects.create(article=hit, day=timezone.now().date(), views=99)
    html = client.get(article.get_absolute_url()).content.decode()
    block = html.split('id="popular-heading"', 1)[1].split("</section>", 1)[0]
    assert "Everyone reads this" in block
    assert "What causes adult acne?" not in block  # never the page itself


def test_without_redis_views_wait_in_the_process_and_flush(no_redis, client, article):
    client.get(article.get_absolute_url(), REMOTE_ADDR="192.0.2.1")
    client.get(article.get_absolute_url(), REMOTE_ADDR="192.0.2.2")
    assert not ArticleViewDay.objects.exists()
    assert popularity.flush_view_counts() == 2
    assert _days(article) == {timezone.now().date(): 2}


def test_without_redis_the_process_flushes_itself_at_most_once_a_minute(no_redis, article, monkeypatch):
    popularity.record_view(article.pk)
    assert not ArticleViewDay.objects.exists()
    monkeypatch.setattr(popularity.local_buffer, "last_flush", popularity.local_buffer.last_flush - 61)
    popularity.record_view(article.pk)
    assert _days(article) == {timezone.now().date(): 2}


def test_unreachable_redis_never_breaks_the_page(settings, client, article):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    popularity._redis_client = None
    try:
        popularity.record_view(article.pk)
    finally:
        popularity._redis_client = None
        settings.REDIS_URL = ""
    assert popularity.flush_view_counts() == 1


@needs_redis
def test_a_batch_abandoned_by_a_crashed_flusher_is_recovered(article):
    client = popularity.redis_client()
    now = timezone.now()
    stale = popularity._key(f"flushing:{int(now.timestamp()) - 3600}:crashed")
    client.hset(stale, f"{article.pk}:{now.date().isoformat()}", 7)
    assert popularity.flush_view_counts(now=now) == 7
    assert not client.exists(stale)


@needs_redis
def test_a_batch_another_flusher_is_working_on_is_left_alone(article):
    client = popularity.redis_client()
    now = timezone.now()
    live = popularity._key(f"flushing:{int(now.timestamp()) - 5}:busy")
    client.hset(live, f"{article.pk}:{now.date().isoformat()}", 7)
    try:
        assert popularity.flush_view_counts(now=now) == 0
        assert client.exists(live)
    finally:
        client.delete(live)


# --- One visitor, one view per article per day (Issue 11 item 19) -----------------------


@pytest.fixture(params=["redis", "no-redis"])
def counting(request, settings, monkeypatch):
    """Both ways of counting: Redis (production), and the per-process fallback."""
    if request.param == "redis":
        if not settings.REDIS_URL:
            pytest.skip("needs REDIS_URL")
    else:
        settings.REDIS_URL = ""
    popularity._redis_client = None
    if hasattr(popularity, "LocalSeen"):  # a fresh memory of who viewed what, for this test
        monkeypatch.setattr(popularity, "local_seen", popularity.LocalSeen())
    popularity.local_buffer.take()
    yield request.param
    popularity._redis_client = None


def _views(article) -> int:
    popularity.flush_view_counts()
    article.refresh_from_db()
    return article.view_count


def test_a_visitor_reloading_an_article_250_times_counts_once(counting, client, article):
    """Issue 11 item 19: 250 anonymous requests made +250 views, and "Most popular" followed."""
    for _ in range(250):
        client.get(article.get_absolute_url(), HTTP_USER_AGENT="Mozilla/5.0 (reloader)")
    assert _views(article) == 1


def test_changing_the_browser_name_does_not_make_one_address_many_readers(counting, client, article):
    """Issue 11 item 19: a script that varies its User-Agent is still one address."""
    for n in range(250):
        client.get(article.get_absolute_url(), HTTP_USER_AGENT=f"Bot/{n}")
    assert _views(article) == popularity.MAX_VISITORS_PER_ADDRESS


def test_different_visitors_and_the_next_day_count_again(counting, article):
    today = timezone.now()
    for n in range(3):
        popularity.record_view(article.pk, popularity.visitor(f"192.0.2.{n}", "Firefox", today.date()), now=today)
    # A family behind one address: two browsers, two readers.
    popularity.record_view(article.pk, popularity.visitor("192.0.2.0", "Safari", today.date()), now=today)
    tomorrow = today + timedelta(days=1)
    popularity.record_view(article.pk, popularity.visitor("192.0.2.0", "Firefox", tomorrow.date()), now=tomorrow)
    assert _views(article) == 5


def test_ipv6_neighbours_in_one_64_block_share_the_address_ceiling(article):
    day = timezone.now().date()
    first = popularity.visitor("2001:db8:1:2::1", "Firefox", day)
    second = popularity.visitor("2001:db8:1:2:ffff::9", "Firefox", day)
    elsewhere = popularity.visitor("2001:db8:1:3::1", "Firefox", day)
    assert first == second
    assert first.address != elsewhere.address


def test_pseudonyms_change_every_day_and_depend_on_the_secret_key(settings):
    """Issue 11 item 19: hashes are keyed by a daily key derived from SECRET_KEY, so they link nothing across days."""
    day = timezone.now().date()
    today = popularity.visitor("192.0.2.7", "Firefox", day)
    assert today == popularity.visitor("192.0.2.7", "Firefox", day)
    assert today.browser != popularity.visitor("192.0.2.7", "Firefox", day + timedelta(days=1)).browser
    settings.SECRET_KEY = "another secret key for this test only"
    assert today.browser != popularity.visitor("192.0.2.7", "Firefox", day).browser


@needs_redis
def test_redis_keeps_no_address_or_browser_name_and_forgets_within_a_day(client, article):
    """Issue 11 item 19: what Redis holds is keyed hashes with a 24-hour expiry, no personal data."""
    popularity._redis_client = None
    client.get(article.get_absolute_url(), REMOTE_ADDR="203.0.113.77", HTTP_USER_AGENT="Mozilla/5.0 DistinctiveUA")
    redis = popularity.redis_client()
    keys = [key.decode() for key in redis.scan_iter(match=popularity._key("*"), count=1000)]
    seen = [key for key in keys if ":seen:" in key or ":address:" in key]
    assert len(seen) == 2
    for key in seen:
        assert "203.0.113" not in key and "DistinctiveUA" not in key
        assert 0 < redis.ttl(key) <= popularity.SEEN_SECONDS
        assert redis.get(key) in (b"1", b"2")
    stored = b"".join(redis.dump(key) or b"" for key in keys)
    assert b"203.0.113" not in stored and b"DistinctiveUA" not in stored
    redis.delete(*keys)
