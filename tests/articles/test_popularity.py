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
    for _ in range(3):
        client.get(article.get_absolute_url())
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
    client.get(article.get_absolute_url())
    client.get(article.get_absolute_url())
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
