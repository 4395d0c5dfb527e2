"""Issue 16 (boundaries): one safe-redirect helper, portal.redirects, behind every
`next` the site follows; and a `next` carried in a link keeps its whole query."""

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import RequestFactory

import portal

pytestmark = pytest.mark.django_db

ROOT = Path(portal.__file__).parent.parent


@pytest.mark.parametrize(
    "candidate",
    ["https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:alert(1)", "http://testserver/x"],
)
def test_other_sites_and_schemes_are_refused(candidate):
    from portal.redirects import safe_next

    request = RequestFactory().get("/", {"next": candidate}, secure=True)
    assert safe_next(request) == ""
    assert safe_next(request, default="/home/") == "/home/"
    assert safe_next(request, candidate) == ""


def test_own_paths_are_followed_from_the_form_then_the_query_string():
    from portal.redirects import safe_next

    factory = RequestFactory()
    assert safe_next(factory.get("/", {"next": "/my/questions/?page=2"})) == "/my/questions/?page=2"
    assert safe_next(factory.post("/?next=/from-query/", {"next": "/from-form/"})) == "/from-form/"
    assert safe_next(factory.post("/?next=/from-query/")) == "/from-query/"
    assert safe_next(factory.get("/"), "/given/") == "/given/"


def test_with_next_encodes_the_target():
    from portal.redirects import with_next

    url = with_next("/accounts/2fa/verify/", "/admin/?a=1&b=2")
    assert parse_qs(urlsplit(url).query) == {"next": ["/admin/?a=1&b=2"]}


def test_the_second_factor_redirect_keeps_the_whole_page_address(client, staff, settings):
    """A filtered admin list opened before the second factor comes back with every filter
    (the `next` was pasted unencoded, so everything after the first & was lost)."""
    settings.REQUIRE_2FA = True
    client.force_login(staff)
    page = "/admin/consultations/question/?status__exact=open&specialty__id__exact=2"
    response = client.get(page)
    assert response.status_code == 302
    assert parse_qs(urlsplit(response["Location"]).query) == {"next": [page]}
    verify = client.get("/accounts/2fa/verify/", {"next": page})
    assert parse_qs(urlsplit(verify["Location"]).query) == {"next": [page]}


def test_one_module_decides_which_redirects_are_safe():
    users = [
        path.relative_to(ROOT).as_posix()
        for app in ("portal", "consultations", "articles")
        for path in (ROOT / app).rglob("*.py")
        if "url_has_allowed_host_and_scheme" in path.read_text()
    ]
    assert users == ["portal/redirects.py"]
