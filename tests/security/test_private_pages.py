"""A signed-in person's pages are never kept by a browser or a proxy (portal.middleware.
PrivateForSessionsMiddleware): on a shared computer, "my questions" (medical question
titles), the profile or the authenticator app's pairing page (its secret as a QR code)
must not come back from the disk cache or the back button after signing out. Found by
the security review: those pages carried no Cache-Control at all."""

import pytest
from django.conf import settings
from django.urls import reverse

from tests.factories import QuestionFactory

pytestmark = pytest.mark.django_db

NEVER_KEPT = {"no-cache", "no-store", "must-revalidate", "private", "max-age=0"}


def directives(response) -> set[str]:
    return {part.strip() for part in response.get("Cache-Control", "").split(",") if part.strip()}


@pytest.fixture
def signed_in(client, patient, specialty):
    question = QuestionFactory(patient=patient, specialty=specialty, title="Rash on my arm")
    client.force_login(patient)
    client.question = question
    return client


@pytest.mark.parametrize(
    "page",
    ["consultations:my_questions", "profile", "two_factor_setup", "two_factor_devices", "password_change", "submitted"],
)
def test_a_signed_in_page_is_never_kept(signed_in, page):
    if page == "submitted":
        url = reverse("consultations:question_submitted", args=[signed_in.question.pk])
    else:
        url = reverse(page)
    for _ in range(3):  # the early "my questions" answer (its kept copy) too
        response = signed_in.get(url)
        assert response.status_code == 200, url
        assert NEVER_KEPT <= directives(response), (url, response.get("Cache-Control"))
        assert "Expires" in response


def test_public_pages_of_a_signed_in_visitor_are_never_shared(signed_in):
    """The home page shows the signed-in person's name in its header: its view says
    private itself (no proxy keeps it), and that stands."""
    response = signed_in.get(reverse("home"))
    assert "private" in directives(response) and "public" not in directives(response)


def test_what_a_view_says_about_caching_stands(rf):
    """A view's own Cache-Control (a picture's private max-age) is left as the view set it;
    a response without one, to a request with a session cookie, gets never-cache."""
    from django.http import HttpResponse

    from portal.middleware import PrivateForSessionsMiddleware

    request = rf.get("/questions/attachments/1/thumbnail/")
    request.COOKIES[settings.SESSION_COOKIE_NAME] = "abc"
    own = HttpResponse("picture", headers={"Cache-Control": "private, max-age=3600"})
    assert PrivateForSessionsMiddleware(lambda r: own)(request)["Cache-Control"] == "private, max-age=3600"
    bare = PrivateForSessionsMiddleware(lambda r: HttpResponse("page"))(request)
    assert NEVER_KEPT <= directives(bare)
    # A response that starts a session (a login) is the new session's too.
    anonymous = rf.post("/accounts/login/")
    starting = HttpResponse("welcome")
    starting.set_cookie(settings.SESSION_COOKIE_NAME, "new")
    assert NEVER_KEPT <= directives(PrivateForSessionsMiddleware(lambda r: starting)(anonymous))


def test_anonymous_pages_stay_cacheable(client):
    response = client.get(reverse("home"))
    assert response.status_code == 200
    assert "no-store" not in directives(response)
    assert settings.SESSION_COOKIE_NAME not in response.cookies
