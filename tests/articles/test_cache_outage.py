"""Redis down: the public pages render from the database, views wait in the process,
nothing answers 500, and a dead server is not asked again on every call."""

import logging
from unittest import mock

import pytest
from django.test import override_settings

from articles import cache as article_cache
from articles import popularity, services

pytestmark = pytest.mark.django_db

# Nothing listens on port 1: connecting is refused at once.
DEAD_REDIS = "redis://127.0.0.1:1/0"
REDIS_DOWN = override_settings(
    CACHES={
        "default": {
            "BACKEND": "portal.redis_cache.RedisCache",
            "LOCATION": DEAD_REDIS,
            "KEY_PREFIX": "dead",
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    },
    REDIS_URL=DEAD_REDIS,
)


def test_public_pages_render_while_redis_is_down(client, article, caplog):
    caplog.set_level(logging.WARNING)
    with REDIS_DOWN:
        for url in ("/", "/articles/", "/articles/?q=acne", article.get_absolute_url()):
            response = client.get(url)
            assert response.status_code == 200, url
            assert "What causes adult acne?" in response.content.decode(), url
        assert client.head("/").status_code == 200
    # One warning from the page cache and one from the view counter, not one per call.
    warnings = [(record.name, record.getMessage()) for record in caplog.records if record.levelno == logging.WARNING]
    assert [name for name, _ in warnings] == ["articles.cache", "articles.popularity"]
    assert all("unavailable" in message for _, message in warnings)


def test_views_during_the_outage_wait_in_the_process_and_reach_the_database(client, article):
    with REDIS_DOWN:
        client.get(article.get_absolute_url(), REMOTE_ADDR="192.0.2.1")
        client.get(article.get_absolute_url(), REMOTE_ADDR="192.0.2.2")
        client.get(article.get_absolute_url(), REMOTE_ADDR="192.0.2.2")  # the same reader again: not counted
        assert popularity.flush_view_counts() == 2
    article.refresh_from_db()
    assert article.view_count == 2


def test_a_dead_cache_is_left_alone_for_a_few_seconds_then_tried_again(client, article):
    with REDIS_DOWN:
        assert client.get("/").status_code == 200
        # On Redis a page is read by one server-side script (articles.cache._read_on_redis).
        with mock.patch.object(article_cache, "_read_on_redis", wraps=article_cache._read_on_redis) as read:
            assert client.get("/").status_code == 200
            assert read.call_count == 0
            article_cache.outage.until = 0  # the retry pause is over
            assert client.get("/").status_code == 200
            assert read.call_count == 1


def test_an_article_edited_while_redis_is_down_saves_and_no_stale_copy_returns(client, article, reviewer):
    url = article.get_absolute_url()
    client.get(url)
    assert not client.get(url).templates  # the old copy is stored

    with REDIS_DOWN:
        article.title = "Adult acne: causes and treatment"
        article.save()
        # The edit withdrew the review: the reviewed copy is not served.
        assert client.get(url).status_code == 404
        services.review_and_publish(article, reviewer=reviewer)
        assert "Adult acne: causes and treatment" in client.get(url).content.decode()

    article_cache.outage.until = 0  # Redis is back and the retry pause is over
    html = client.get(url).content.decode()
    assert "Adult acne: causes and treatment" in html
    assert "What causes adult acne?" not in html


def test_newsletter_sign_up_works_while_redis_is_down(client, settings):
    settings.RATELIMIT_ENABLED = True
    with REDIS_DOWN:
        response = client.post("/articles/newsletter/", {"email": "down@example.com", "consent": "on"}, follow=True)
    assert response.status_code == 200
    assert b"we have sent it a confirmation link" in response.content


def test_the_early_page_path_falls_back_to_rendering_while_redis_is_down(client, article):
    """Issue 17: the early cache path (articles/middleware.py) with a dead Redis: the
    normal path renders the page from the database, with the same headers."""
    url = article.get_absolute_url()
    client.get(url)
    early = client.get(url)
    assert not hasattr(early.wsgi_request, "user")  # answered early while Redis is up
    with REDIS_DOWN:
        for _ in range(2):
            down = client.get(url)
            assert down.status_code == 200 and down.templates
            assert "What causes adult acne?" in down.content.decode()
    assert set(down.headers) == set(early.headers)
    assert down["Cache-Control"] == early["Cache-Control"] and down["Vary"] == early["Vary"]
