"""Issue 15, rough edges on the public articles pages: the newsletter's reply page, the
search placeholder's example, suggestions on an empty search, cards whose review lapsed."""

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from articles import newsletter, selectors
from articles.demo import seed_articles
from articles.models import Article, Subscriber, Tag
from tests.articles.factories import ArticleFactory
from tests.articles.test_demo import SPECIALTIES
from tests.factories import DoctorFactory, SpecialtyFactory

pytestmark = pytest.mark.django_db

NEWSLETTER = "/articles/newsletter/"


def test_the_newsletter_reply_page_does_not_show_the_empty_form_again(client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(NEWSLETTER, {"email": "reader@example.com", "consent": "on"}, follow=True)
    html = response.content.decode()
    assert newsletter.SIGN_UP_REPLY in html
    assert 'name="email"' not in html and "Subscribe</button>" not in html
    assert html.count(newsletter.SIGN_UP_REPLY) == 1
    assert Subscriber.objects.count() == 1


def test_an_invalid_newsletter_form_is_shown_again_with_200(client):
    """One convention for every form: an invalid one comes back with its errors and 200
    (Django's way); 429 stays for rate limits."""
    response = client.post(NEWSLETTER, {"email": "keep@example.com"})
    assert response.status_code == 200
    assert "Please tick the box" in response.content.decode()
    assert 'value="keep@example.com"' in response.content.decode()


@pytest.fixture
def demo_articles():
    doctors = {}
    for slug, name in SPECIALTIES.items():
        specialty = SpecialtyFactory(slug=slug, name=name)
        doctors[slug] = [DoctorFactory(specialties=[specialty]), DoctorFactory(specialties=[specialty])]
    seed_articles(doctors, timezone.now())


def placeholder_examples(html: str, field_id: str) -> list[str]:
    placeholder = re.search(rf'id="{field_id}"[^>]*placeholder="([^"]+)"', html).group(1)
    return [word.strip() for word in placeholder.split("e.g.", 1)[1].split(",")]


@pytest.mark.parametrize(("url", "field_id"), [("/", "home-q"), ("/articles/", "id_q")])
def test_every_search_example_finds_demo_articles(client, demo_articles, url, field_id):
    examples = placeholder_examples(client.get(url).content.decode(), field_id)
    assert examples
    for example in examples:
        found = client.get("/articles/", {"q": example}).context["page"].count
        assert found >= 1, f"the placeholder's example {example!r} finds nothing"


def test_an_empty_search_offers_topics_and_popular_articles(client, article):
    article.tags.add(Tag.objects.create(name="Acne", slug="acne"))
    html = client.get("/articles/", {"q": "zzyzx"}).content.decode()
    assert "No articles match" in html
    suggestions = html.split('class="mb-4 search-suggestions"', 1)[1]
    assert 'href="/articles/?tag=acne"' in suggestions
    assert f'href="{article.get_absolute_url()}"' in suggestions


def test_a_card_says_medically_reviewed_only_while_the_review_is_current(client, doctor, reviewer, specialty):
    current = ArticleFactory(author=doctor, reviewer=reviewer, specialty=specialty, title="Fresh advice")
    lapsed = ArticleFactory(
        author=doctor, reviewer=reviewer, specialty=specialty, title="Old advice", reviewed_ago=timedelta(days=400)
    )
    html = client.get("/articles/").content.decode()
    cards = {
        title: card
        for card in html.split('<article class="card')
        for title in ("Fresh advice", "Old advice")
        if title in card
    }
    assert "Medically reviewed by Dr. Rita Reviewer" in cards["Fresh advice"]
    assert "Medically reviewed" not in cards["Old advice"]
    assert "Due for its medical re-review" in cards["Old advice"]
    assert current.review_is_current() and not lapsed.review_is_current()


SEARCHES = [
    pytest.param(selectors.portable_search, id="portable"),
    pytest.param(
        selectors.postgres_search,
        id="postgresql",
        marks=pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL full-text search"),
    ),
]


@pytest.mark.parametrize("search", SEARCHES)
def test_both_searches_find_demo_articles_for_every_placeholder_example(client, demo_articles, search):
    """CI runs on PostgreSQL, `make run` on SQLite: both search versions run here on the same
    articles, so an example that only one of them finds fails on either database."""
    examples = placeholder_examples(client.get("/").content.decode(), "home-q")
    examples += placeholder_examples(client.get("/articles/").content.decode(), "id_q")
    for example in examples:
        assert search(Article.objects.published(), example).exists(), f"{example!r} finds nothing"
