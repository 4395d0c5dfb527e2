"""Response headers and page markup that keep the browser on our side: a
Content-Security-Policy without inline scripts on every main public page, frame
denial, referrer and MIME-sniffing rules, and cookies scripts cannot read."""

from html.parser import HTMLParser

import pytest
from django.urls import reverse

from tests.articles.factories import ArticleFactory

pytestmark = pytest.mark.django_db


class MarkupAudit(HTMLParser):
    """Collects what a strict CSP would block or what would smuggle script in."""

    def __init__(self):
        super().__init__()
        self.inline_scripts: list[str] = []
        self.handlers: list[str] = []
        self.style_attributes: list[str] = []
        self.script_urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        for name, _ in attrs:
            if name.lower().startswith("on"):
                self.handlers.append(f"<{tag} {name}>")
            if name.lower() == "style":
                self.style_attributes.append(f"<{tag} style>")
        if tag == "script":
            if attributes.get("src"):
                self.script_urls.append(attributes["src"])
            elif attributes.get("type") != "application/ld+json":
                self.inline_scripts.append(self.getpos())


def csp_directives(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    directives = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            directives[words[0]] = words[1:]
    return directives


def assert_page_obeys_the_policy(response):
    assert response.status_code in (200, 429), response.status_code
    directives = csp_directives(response)
    script_sources = directives.get("script-src", directives.get("default-src"))
    assert script_sources, "no script-src or default-src"
    assert "'unsafe-inline'" not in script_sources
    assert "'unsafe-eval'" not in script_sources
    assert directives.get("object-src") == ["'none'"]
    assert directives.get("frame-ancestors") == ["'none'"]

    audit = MarkupAudit()
    audit.feed(response.content.decode())
    assert audit.inline_scripts == [], f"inline <script> at {audit.inline_scripts}"
    assert audit.handlers == [], f"event handler attributes: {audit.handlers}"
    assert audit.style_attributes == [], f"inline style attributes: {audit.style_attributes}"
    # Scripts come from our own static files, never another site.
    assert all(url.startswith("/static/") for url in audit.script_urls), audit.script_urls


@pytest.fixture
def published_article(doctor, senior_doctor, specialty):
    return ArticleFactory(specialty=specialty, author=doctor, reviewer=senior_doctor, title="Sunburn: what helps")


def public_pages(article) -> list[str]:
    return [
        reverse("home"),
        reverse("articles:list"),
        article.get_absolute_url(),
        reverse("login"),
        reverse("signup"),
        reverse("password_reset"),
        reverse("terms"),
        reverse("privacy"),
    ]


def test_main_public_pages_have_the_policy_and_no_inline_script(client, published_article):
    for path in public_pages(published_article):
        response = client.get(path)
        assert response.status_code == 200, path
        assert_page_obeys_the_policy(response)


def test_ask_page_and_profile_have_the_policy_and_no_inline_script(client, patient):
    client.force_login(patient)
    for path in (reverse("consultations:ask"), reverse("profile"), reverse("consultations:my_questions")):
        assert_page_obeys_the_policy(client.get(path))


def test_lockout_and_rate_limit_pages_obey_the_policy_too(client, patient, settings):
    from portal import ratelimit

    settings.AXES_ENABLED = True
    for _ in range(settings.AXES_FAILURE_LIMIT):
        locked = client.post(
            reverse("login"), {"username": patient.email, "password": "wrong"}, REMOTE_ADDR="192.0.2.90"
        )
    assert locked.status_code == 429
    assert_page_obeys_the_policy(locked)

    settings.RATELIMIT_ENABLED = True
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "password_reset": (0, 3600)}
    ratelimit.reset("password_reset", "ip:192.0.2.91", 3600)
    limited = client.post(reverse("password_reset"), {"email": patient.email}, REMOTE_ADDR="192.0.2.91")
    assert limited.status_code == 429
    assert_page_obeys_the_policy(limited)


def test_pages_deny_framing_sniffing_and_leaking_the_address(client):
    response = client.get(reverse("home"))
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"


def test_session_and_csrf_cookies_are_out_of_reach_of_scripts(client, patient):
    from tests.factories import PASSWORD

    client.get(reverse("login"))
    csrf = client.cookies["csrftoken"]
    assert csrf["httponly"]
    assert csrf["samesite"] == "Lax"
    client.post(reverse("login"), {"username": patient.email, "password": PASSWORD})
    session = client.cookies["sessionid"]
    assert session["httponly"]
    assert session["samesite"] == "Lax"


def test_the_markup_audit_catches_what_it_looks_for():
    audit = MarkupAudit()
    audit.feed(
        '<script>alert(1)</script><script type="application/ld+json">{}</script>'
        '<img src="x.png" onerror="alert(2)"><p style="color:red">hi</p><script src="https://cdn.example/x.js"></script>'
    )
    assert len(audit.inline_scripts) == 1
    assert audit.handlers == ["<img onerror>"]
    assert audit.style_attributes == ["<p style>"]
    assert audit.script_urls == ["https://cdn.example/x.js"]
