"""Whole public pages cached for anonymous visitors: one copy per URL and content version,
never a signed-in visitor's page or anyone's message, views still counted on every visit."""

from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from articles import cache as article_cache
from articles import popularity
from articles.models import Article

pytestmark = pytest.mark.django_db

PUBLIC_URLS = ("/", "/articles/", "/articles/what-causes-adult-acne/")


def _rendered(response) -> bool:
    """True when the view rendered templates, False when the stored copy was served."""
    return bool(response.templates)


@pytest.mark.parametrize("url", PUBLIC_URLS)
def test_repeat_anonymous_visit_is_the_stored_copy_without_rendering_or_queries(
    client, article, url, django_assert_num_queries
):
    first = client.get(url)
    assert first.status_code == 200 and _rendered(first)
    with django_assert_num_queries(0):
        again = client.get(url)
    assert again.status_code == 200
    assert not _rendered(again)
    assert again.content == first.content
    assert again["Content-Type"] == "text/html; charset=utf-8"


@pytest.mark.parametrize("url", PUBLIC_URLS)
def test_stored_copy_gets_fresh_security_headers_and_no_cookie(client, article, url):
    client.get(url)
    response = client.get(url)
    assert not _rendered(response)
    assert "script-src 'self'" in response["Content-Security-Policy"]
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "public" in response["Cache-Control"] and "max-age=60" in response["Cache-Control"]
    assert "Cookie" in response["Vary"]
    assert not response.cookies
    assert b"csrfmiddlewaretoken" not in response.content


def test_every_readers_get_counts_a_view_even_from_the_stored_copy_but_head_does_not(client, article):
    url = article.get_absolute_url()
    for n in range(3):
        client.get(url, REMOTE_ADDR=f"192.0.2.{n + 1}")
    client.head(url, REMOTE_ADDR="192.0.2.9")
    assert popularity.flush_view_counts() == 3


def test_signed_in_visitor_gets_their_own_page_and_never_the_shared_one(client, article, patient):
    url = article.get_absolute_url()
    client.get(url)  # the anonymous copy is stored

    client.force_login(patient)
    mine = client.get(url)
    assert _rendered(mine)
    html = mine.content.decode()
    assert "Log out" in html and patient.get_short_name() in html
    assert "private" in mine["Cache-Control"] and "public" not in mine["Cache-Control"]

    stranger = Client().get(url)
    assert b"Log out" not in stranger.content
    assert patient.get_short_name().encode() not in stranger.content


def test_a_signed_in_visit_first_is_not_stored_for_strangers(client, article, patient):
    client.force_login(patient)
    client.get("/")
    stranger = Client().get("/")
    assert _rendered(stranger)
    assert b"Log out" not in stranger.content and b"Log in" in stranger.content


def test_a_waiting_message_is_shown_to_its_owner_and_never_stored(article, django_capture_on_commit_callbacks):
    reader = Client()
    with django_capture_on_commit_callbacks(execute=True):
        reader.post("/articles/newsletter/", {"email": "reader@example.com", "consent": "on"})

    own = reader.get("/")
    assert "we have sent it a confirmation link" in own.content.decode()
    assert "private" in own["Cache-Control"]

    stranger = Client().get("/")
    assert b"we have sent it a confirmation link" not in stranger.content
    assert b"we have sent it a confirmation link" not in reader.get("/").content  # shown once


def test_list_copies_follow_only_the_parameters_the_page_reads(client, article):
    first = client.get("/articles/?specialty=dermatology&q=acne")
    assert _rendered(first)
    same = client.get("/articles/?q=acne&utm_source=newsletter&specialty=dermatology")
    assert not _rendered(same)
    assert same.content == first.content

    other = client.get("/articles/?q=zebra")
    assert _rendered(other)
    assert b"No articles match" in other.content


def test_verified_badge_goes_when_the_review_expires_even_from_a_stored_copy(client, article):
    Article.objects.filter(pk=article.pk).update(next_review_due_at=timezone.now() + timedelta(minutes=2))
    url = article.get_absolute_url()
    assert b"Verified data" in client.get(url).content
    assert not _rendered(client.get(url))

    with time_machine.travel(timezone.now() + timedelta(minutes=3)):
        later = client.get(url)
    assert _rendered(later)
    assert b"Verified data" not in later.content


def test_a_page_built_while_an_article_changed_is_never_served():
    key = article_cache.page_key("/articles/", [])
    version, stored = article_cache.get_page(key)
    assert stored is None
    article_cache.bump_version()  # an editor saves while the page is being rendered
    article_cache.put_page(key, version, ("text/html; charset=utf-8", b"old", None))
    assert article_cache.get_page(key)[1] is None

    current, _ = article_cache.get_page(key)
    article_cache.put_page(key, current, ("text/html; charset=utf-8", b"new", None))
    assert article_cache.get_page(key) == (current, ("text/html; charset=utf-8", b"new", None))


def test_unknown_article_is_404_and_not_counted(client, article):
    assert client.get("/articles/no-such-article/").status_code == 404
    assert client.get("/articles/no-such-article/").status_code == 404
    assert popularity.flush_view_counts() == 0
