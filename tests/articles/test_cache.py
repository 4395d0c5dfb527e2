"""Cached public pages are invalidated as soon as an article changes."""

import pytest

from articles import cache as article_cache
from articles import services
from articles.models import Source
from tests.articles.factories import TagFactory

pytestmark = pytest.mark.django_db


def test_editing_an_article_refreshes_its_cached_page_list_and_home(client, article, reviewer):
    for url in (article.get_absolute_url(), "/articles/", "/"):
        assert "What causes adult acne?" in client.get(url).content.decode()

    article.title = "Adult acne: causes and treatment"
    article.save()
    # A changed title withdraws the review: every cached copy of the reviewed page goes.
    assert client.get(article.get_absolute_url()).status_code == 404
    for url in ("/articles/", "/"):
        assert "What causes adult acne?" not in client.get(url).content.decode(), url

    services.review_and_publish(article, reviewer=reviewer)
    for url in (article.get_absolute_url(), "/articles/", "/"):
        html = client.get(url).content.decode()
        assert "Adult acne: causes and treatment" in html, url


def test_cached_page_is_served_until_something_changes(client, article, reviewer, django_assert_num_queries):
    client.get(article.get_absolute_url())
    with django_assert_num_queries(0):
        client.get(article.get_absolute_url())
    Source.objects.create(article=article, title="Brand new source", url="https://www.who.int/")
    # A new source withdraws the review (the page goes) until the article is reviewed again.
    assert client.get(article.get_absolute_url()).status_code == 404
    services.review_and_publish(article, reviewer=reviewer)
    assert "Brand new source" in client.get(article.get_absolute_url()).content.decode()


def test_adding_a_tag_refreshes_the_page(client, article):
    client.get(article.get_absolute_url())
    article.tags.add(TagFactory(name="Teenagers", slug="teenagers"))
    assert "#Teenagers" in client.get(article.get_absolute_url()).content.decode()


def test_unpublishing_removes_the_article_everywhere(client, article):
    client.get(article.get_absolute_url())
    client.get("/articles/")
    services.return_to_draft(article, by=None)
    assert client.get(article.get_absolute_url()).status_code == 404
    assert "What causes adult acne?" not in client.get("/articles/").content.decode()


def test_deleting_an_article_removes_it_from_the_list(client, article):
    client.get("/articles/")
    article.delete()
    assert "What causes adult acne?" not in client.get("/articles/").content.decode()


def test_renaming_the_reviewer_refreshes_the_page(client, article, reviewer):
    client.get(article.get_absolute_url())
    reviewer.display_name = "Dr. Rita Renamed"
    reviewer.save()
    assert "Medically reviewed by" in (html := client.get(article.get_absolute_url()).content.decode())
    assert "Dr. Rita Renamed" in html


def test_an_evicted_version_key_never_brings_back_stale_pages(client, article):
    from django.core.cache import cache

    client.get(article.get_absolute_url())
    old_version = article_cache.content_version()
    cache.delete(article_cache.VERSION_KEY)
    article_cache.bump_version()
    assert article_cache.content_version() > old_version
