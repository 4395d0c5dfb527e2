"""The early page cache (articles/middleware.py): an anonymous repeat visit to home,
the article list or an article is answered right after SecurityMiddleware and
WhiteNoise, with the very headers of the normal path, and never for a visitor
who carries a session, a message or credentials (issue 17, "Anonymous article
traffic near that ceiling")."""

import time

import pytest
from django.conf import settings
from django.http import HttpResponse
from django.test import Client, RequestFactory, override_settings

from articles import cache as article_cache
from articles import local_pages as local_pages_module
from articles import popularity, services, views
from articles.local_pages import channel as local_channel
from articles.local_pages import local_pages
from articles.middleware import EarlyPageCacheMiddleware

pytestmark = pytest.mark.django_db

EARLY = f"{EarlyPageCacheMiddleware.__module__}.{EarlyPageCacheMiddleware.__qualname__}"
PUBLIC_URLS = ("/", "/articles/", "/articles/?q=acne", "/articles/what-causes-adult-acne/")
PRODUCTION = {
    "SECURE_SSL_REDIRECT": True,
    "SECURE_PROXY_SSL_HEADER": ("HTTP_X_FORWARDED_PROTO", "https"),
    "SECURE_HSTS_SECONDS": 31_536_000,
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": True,
    "SECURE_HSTS_PRELOAD": True,
    "SESSION_COOKIE_SECURE": True,
    "CSRF_COOKIE_SECURE": True,
}


def _without_early_path():
    return override_settings(MIDDLEWARE=[name for name in settings.MIDDLEWARE if name != EARLY])


def _answered_early(response) -> bool:
    # The layers after the early path never ran: no session, no user on the request.
    return not hasattr(response.wsgi_request, "user")


def _store(url, **extra):
    first = Client().get(url, **extra)
    assert first.status_code == 200 and first.templates  # rendered and stored by the view
    return first


def test_the_early_path_is_in_the_stack_right_after_security_and_whitenoise():
    """(And the layer that marks signed-in pages never-cache, which does nothing for the
    anonymous requests it answers: they carry no session cookie.)"""
    stack = settings.MIDDLEWARE
    assert stack.index(EARLY) == stack.index("whitenoise.middleware.WhiteNoiseMiddleware") + 2
    assert stack.index(EARLY) == stack.index("portal.middleware.PrivateForSessionsMiddleware") + 1
    assert stack.index("django.middleware.security.SecurityMiddleware") < stack.index(EARLY)


@pytest.mark.parametrize("url", PUBLIC_URLS)
def test_early_answer_has_exactly_the_headers_and_body_of_the_normal_path(article, url):
    """Issue 17: the early path never drops (or adds) a header."""
    _store(url)
    early = Client().get(url)
    with _without_early_path():
        normal = Client().get(url)
    assert _answered_early(early) and not _answered_early(normal)
    assert not normal.templates  # the normal path served the same stored copy
    assert dict(early.headers) == dict(normal.headers)
    assert early.content == normal.content
    assert not early.cookies and not normal.cookies
    for header in ("Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options", "Referrer-Policy"):
        assert header in early.headers
    assert early["Cross-Origin-Opener-Policy"] == "same-origin"
    assert "Cookie" in early["Vary"] and "max-age=60" in early["Cache-Control"]


@pytest.mark.parametrize("url", PUBLIC_URLS)
def test_with_production_settings_too_hsts_included(article, url):
    """Issue 17: production headers (HSTS) are the same on the early path; plain HTTP is still redirected."""
    with override_settings(**PRODUCTION):
        https = {"HTTP_X_FORWARDED_PROTO": "https", "secure": True}
        _store(url, **https)
        early = Client().get(url, **https)
        with _without_early_path():
            normal = Client().get(url, **https)
        assert _answered_early(early) and not _answered_early(normal)
        assert dict(early.headers) == dict(normal.headers)
        assert early["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
        plain = Client().get(url)
        assert plain.status_code == 301 and plain["Location"].startswith("https://")


def test_a_signed_in_visitor_never_gets_the_shared_copy(article, patient):
    """Issue 17: never a cached page for a logged-in user."""
    url = article.get_absolute_url()
    _store(url)
    client = Client()
    client.force_login(patient)
    mine = client.get(url)
    assert not _answered_early(mine) and mine.templates
    assert patient.get_short_name() in mine.content.decode() and "Log out" in mine.content.decode()
    assert "private" in mine["Cache-Control"]


@pytest.mark.parametrize(
    "cookie",
    [
        f"{settings.SESSION_COOKIE_NAME}=not-a-real-session",
        "messages=anything",
        f"{settings.CSRF_COOKIE_NAME}=too-short",
        "someone_elses=1",
    ],
)
def test_any_session_messages_unknown_or_malformed_cookie_goes_the_normal_way(article, cookie):
    _store("/")
    response = Client(HTTP_COOKIE=cookie).get("/")
    assert response.status_code == 200
    assert not _answered_early(response)


def test_a_well_formed_csrf_cookie_alone_still_gets_the_early_answer_and_keeps_its_cookie(article):
    _store("/")
    token = "a" * 32
    response = Client(HTTP_COOKIE=f"{settings.CSRF_COOKIE_NAME}={token}").get("/")
    assert _answered_early(response)
    assert not response.cookies


def test_credentials_and_other_methods_go_the_normal_way(article):
    url = article.get_absolute_url()
    _store(url)
    assert not _answered_early(Client().get(url, HTTP_AUTHORIZATION="Bearer x"))
    post = Client().post(url)
    assert post.status_code == 405 and not _answered_early(post)
    head = Client().head(url)
    assert head.status_code == 200 and _answered_early(head)


def test_only_the_query_parameters_a_copy_is_keyed_on_are_answered_early(article):
    _store("/articles/?q=acne")
    assert _answered_early(Client().get("/articles/?q=acne"))
    tagged = Client().get("/articles/?q=acne&utm_source=newsletter")
    assert not _answered_early(tagged) and not tagged.templates  # the view's shared copy, the normal way
    _store("/")
    assert not _answered_early(Client().get("/?q=acne"))
    assert Client().get("/articles/?q=%00").status_code == 400


def test_a_waiting_message_is_never_answered_early_nor_stored(article, django_capture_on_commit_callbacks):
    """Issue 17: never a page with messages."""
    _store("/")
    reader = Client()
    with django_capture_on_commit_callbacks(execute=True):
        reader.post("/articles/newsletter/", {"email": "reader@example.com", "consent": "on"})
    own = reader.get("/")
    assert not _answered_early(own)
    assert "we have sent it a confirmation link" in own.content.decode()
    stranger = Client().get("/")
    assert _answered_early(stranger)
    assert b"we have sent it a confirmation link" not in stranger.content


def test_a_form_error_is_never_stored_nor_answered_early(article):
    """Issue 17: never a page with a form error (the newsletter form sits on the article page)."""
    url = article.get_absolute_url()
    _store(url)
    error = "does not look like an e-mail address"
    visitor = Client()
    refused = visitor.post("/articles/newsletter/", {"email": "not an address", "consent": "on", "next": url})
    # The form again with its error (200, the one convention): it answers a POST, never stored.
    assert refused.status_code == 200 and error in refused.content.decode()
    assert not _answered_early(refused)
    assert not _answered_early(visitor.get("/articles/newsletter/"))  # not a shared page: never early
    for client in (visitor, Client()):
        page = client.get(url)
        assert _answered_early(page) and error not in page.content.decode()
    # Only a GET's plain 200, with no cookie, is ever stored.
    assert not views._page_is_shareable(RequestFactory().post(url), HttpResponse("the form again, with errors"))
    request = RequestFactory().get(url)
    assert not views._page_is_shareable(request, HttpResponse("form error", status=400))


def test_an_edit_is_shown_at_once_on_the_early_path(article, reviewer):
    url = article.get_absolute_url()
    _store(url)
    assert _answered_early(Client().get(url))
    article.title = "Adult acne: the causes"
    article.save()
    # The edit withdrew the review: the early copy of the reviewed page is retired at once.
    withdrawn = Client().get(url)
    assert not _answered_early(withdrawn) and withdrawn.status_code == 404
    services.review_and_publish(article, reviewer=reviewer)
    after = Client().get(url)
    assert not _answered_early(after) and "Adult acne: the causes" in after.content.decode()
    again = Client().get(url)
    assert _answered_early(again) and "Adult acne: the causes" in again.content.decode()


def test_views_are_counted_on_the_early_path_but_not_for_head(article):
    url = article.get_absolute_url()
    _store(url, REMOTE_ADDR="192.0.2.1")
    for n in range(2, 4):
        assert _answered_early(Client().get(url, REMOTE_ADDR=f"192.0.2.{n}"))
    Client().head(url, REMOTE_ADDR="192.0.2.9")
    assert popularity.flush_view_counts() == 3


def test_an_unknown_layer_after_it_turns_the_early_path_off(article, caplog):
    stack = [*settings.MIDDLEWARE]
    stack.insert(stack.index(EARLY) + 1, "django.middleware.gzip.GZipMiddleware")
    _store("/")
    with override_settings(MIDDLEWARE=stack):
        response = Client().get("/")
    assert response.status_code == 200 and not _answered_early(response)
    assert "Early page cache off" in caplog.text


def test_on_the_early_path_a_visitor_counts_once_a_day_and_an_address_at_most_ten_times(article):
    """The view count taken by the early path's read keeps popularity's rules (Redis or not)."""
    url = article.get_absolute_url()
    _store(url, REMOTE_ADDR="192.0.2.1", HTTP_USER_AGENT="Firefox")  # counted by the view
    for _ in range(2):
        assert _answered_early(Client().get(url, REMOTE_ADDR="192.0.2.1", HTTP_USER_AGENT="Firefox"))
    for n in range(popularity.MAX_VISITORS_PER_ADDRESS + 2):
        assert _answered_early(Client().get(url, REMOTE_ADDR="192.0.2.50", HTTP_USER_AGENT=f"Browser {n}"))
    assert popularity.flush_view_counts() == 1 + popularity.MAX_VISITORS_PER_ADDRESS


needs_redis = pytest.mark.skipif(not settings.REDIS_URL, reason="needs REDIS_URL")


def _redis_commands(monkeypatch):
    """The commands this process's Redis client sends from now on (not the listener's own connection)."""
    from django.core.cache import cache

    server = popularity.redis_client()
    commands = []

    def counted(*args, **kwargs):
        commands.append(args[0])
        return type(server).execute_command(server, *args, **kwargs)

    monkeypatch.setattr(server, "execute_command", counted)
    monkeypatch.setattr(cache._cache, "get_client", lambda *a, **k: pytest.fail("the early path used the cache client"))
    return commands


def _following(timeout=5.0):
    """Wait until this process's listener follows the content version (articles/local_pages.py)."""
    deadline = time.monotonic() + timeout
    while local_pages.version is None or local_pages.channel != local_channel():
        assert time.monotonic() < deadline, "the listener never followed the channel"
        local_pages.get("")  # starts the listener if needed
        time.sleep(0.02)


@needs_redis
def test_without_a_copy_in_memory_an_early_answer_with_its_view_count_is_one_round_trip(article, monkeypatch):
    """Issue 17: the stored copy, its content version and the view count travel together."""
    url = article.get_absolute_url()
    _store(url)
    assert popularity.flush_view_counts() == 1
    local_pages.forget()
    with monkeypatch.context() as patch:
        commands = _redis_commands(patch)
        assert _answered_early(Client().get(url, REMOTE_ADDR="192.0.2.77"))
    assert commands == ["EVALSHA"]
    assert popularity.flush_view_counts() == 1


@needs_redis
def test_a_copy_in_memory_answers_without_redis_and_its_view_is_counted_by_the_batch(article, monkeypatch):
    url = article.get_absolute_url()
    _following()
    _store(url)
    Client().get(url, REMOTE_ADDR="192.0.2.2")  # read from Redis, kept in memory
    with monkeypatch.context() as patch:
        commands = _redis_commands(patch)
        early = Client().get(url, REMOTE_ADDR="192.0.2.3")
        again = Client().get(url, REMOTE_ADDR="192.0.2.3")
    assert _answered_early(early) and _answered_early(again) and commands == []
    assert early.content == again.content and "What causes adult acne?" in early.content.decode()
    assert popularity.flush_view_counts() == 3  # the first visit, 192.0.2.2 and 192.0.2.3 once


@needs_redis
def test_an_edit_published_by_another_process_retires_the_copy_in_memory(article):
    url = article.get_absolute_url()
    _following()
    _store(url)
    Client().get(url)
    assert local_pages.get(views.shared_page_key(RequestFactory().get(url), ())) is not None
    # Another process saves an article: it bumps the version on Redis and announces it.
    from django.core.cache import cache

    server = popularity.redis_client()
    newer = server.incr(cache.make_key(article_cache.VERSION_KEY))
    server.publish(local_channel(), newer)
    deadline = time.monotonic() + 5
    while local_pages.version != newer:
        assert time.monotonic() < deadline, "the change never reached the listener"
        time.sleep(0.01)
    after = Client().get(url)
    assert after.templates  # not the old copy: rendered again, by the normal path


@needs_redis
def test_no_copy_from_memory_while_the_listener_has_not_heard_from_redis(article, monkeypatch):
    url = article.get_absolute_url()
    _following()
    _store(url)
    Client().get(url)
    monkeypatch.setattr(local_pages_module, "SILENCE_SECONDS", -1.0)  # as if Redis had gone quiet
    with monkeypatch.context() as patch:
        commands = _redis_commands(patch)
        assert _answered_early(Client().get(url))
    assert commands == ["EVALSHA"]
