"""sitemap.xml, the feed and robots.txt."""

import re
import xml.etree.ElementTree as ET

import pytest

from articles.models import ArticleStatus
from tests.articles.factories import ArticleFactory

pytestmark = pytest.mark.django_db

NS = {"sm": "http://www.sitemaps.org/schemas/sitemap/0.9"}


def _locs(client):
    response = client.get("/sitemap.xml")
    assert response.status_code == 200
    return [loc.text for loc in ET.fromstring(response.content).findall("sm:url/sm:loc", NS)]  # noqa: S314


def test_sitemap_lists_exactly_the_published_articles_and_static_pages(client, settings, article, doctor, specialty):
    settings.SITE_URL = "https://portal.example"
    second = ArticleFactory(author=doctor, specialty=specialty, slug="second-published")
    ArticleFactory(draft=True, author=doctor, specialty=specialty, slug="a-draft")
    ArticleFactory(draft=True, status=ArticleStatus.IN_REVIEW, author=doctor, specialty=specialty, slug="in-review")

    locs = _locs(client)
    article_locs = {loc for loc in locs if re.match(r"https://portal\.example/articles/[\w-]+/$", loc)}
    assert article_locs == {
        f"https://portal.example{article.get_absolute_url()}",
        f"https://portal.example{second.get_absolute_url()}",
    }
    assert set(locs) - article_locs == {
        "https://portal.example/",
        "https://portal.example/articles/",
        "https://portal.example/terms/",
        "https://portal.example/privacy/",
        "https://portal.example/disclaimer/",
    }


def test_sitemap_ignores_a_forged_host_header(client, settings, article):
    settings.SITE_URL = "https://portal.example"
    settings.ALLOWED_HOSTS = ["*"]
    response = client.get("/sitemap.xml", HTTP_HOST="evil.example")
    assert b"evil.example" not in response.content


def test_feed_lists_published_articles_newest_first(client, article, doctor, specialty):
    ArticleFactory(draft=True, author=doctor, specialty=specialty, title="Unfinished thoughts")
    response = client.get("/feed.xml")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/rss+xml")
    channel = ET.fromstring(response.content).find("channel")  # noqa: S314 - our own output
    titles = [item.findtext("title") for item in channel.findall("item")]
    assert titles == ["What causes adult acne?"]
    assert channel.find("item").findtext("link").endswith(article.get_absolute_url())


def test_robots_txt_points_to_the_sitemap_and_hides_private_areas(client, settings):
    settings.SITE_URL = "https://portal.example"
    response = client.get("/robots.txt")
    assert response["Content-Type"].startswith("text/plain")
    body = response.content.decode()
    assert "Sitemap: https://portal.example/sitemap.xml" in body
    for private in ("/admin/", "/doctor/", "/questions/"):
        assert f"Disallow: {private}" in body
