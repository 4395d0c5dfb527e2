"""`{% url %}` and `reverse_plain`: a name alone reversed once per process, with every
answer still the one Django's reverse() gives (portal/url_memo.py, portal/templatetags/plain_url.py)."""

import pytest
from django.contrib.auth.models import AnonymousUser
from django.template import Context, RequestContext, Template
from django.test import RequestFactory, override_settings
from django.urls import NoReverseMatch, clear_script_prefix, reverse, set_script_prefix

from portal import url_memo
from portal.templatetags.plain_url import PlainURLNode
from portal.url_memo import reverse_plain

NAMES = ["home", "terms", "privacy", "disclaimer", "article_feed", "login", "signup", "consultations:ask"]


def render(source: str, **context) -> str:
    return Template(source).render(Context(context))


def test_the_url_tag_is_the_kept_one_and_answers_as_reverse_does():
    assert isinstance(Template("{% url 'home' %}").nodelist[0], PlainURLNode)
    for name in NAMES:
        assert render(f"{{% url '{name}' %}}") == reverse(name)
        assert reverse_plain(name) == reverse(name)
    # A name from a variable, and `as`: Django's own syntax.
    assert render("{% url name %}", name="privacy") == reverse("privacy")
    assert render("{% url 'terms' as link %}[{{ link }}]") == f"[{reverse('terms')}]"


def test_links_with_arguments_are_reversed_each_time():
    assert render("{% url 'consultations:question_detail' 7 %}") == reverse("consultations:question_detail", args=[7])
    assert render("{% url 'consultations:question_detail' pk=8 %}") == reverse(
        "consultations:question_detail", kwargs={"pk": 8}
    )


def test_an_unknown_name_fails_as_before_and_is_not_kept():
    before = len(url_memo._kept)
    with pytest.raises(NoReverseMatch):
        render("{% url 'no-such-page' %}")
    with pytest.raises(NoReverseMatch):
        reverse_plain("no-such-page")
    assert render("{% url 'no-such-page' as link %}[{{ link }}]") == "[]"
    assert len(url_memo._kept) == before


def test_another_urlconf_gets_its_own_answer():
    portal_terms = reverse_plain("terms")
    with override_settings(ROOT_URLCONF="tests.portal.moved_urls"):
        assert reverse_plain("terms") == "/elsewhere/terms/"
        assert render("{% url 'terms' %}") == "/elsewhere/terms/"
    assert reverse_plain("terms") == portal_terms


def test_a_script_prefix_is_honoured():
    terms = reverse_plain("terms")
    set_script_prefix("/clinic/")
    try:
        assert reverse_plain("terms") == "/clinic" + terms
    finally:
        clear_script_prefix()
        set_script_prefix("/")
    assert reverse_plain("terms") == terms


def test_the_current_admin_site_is_part_of_the_answer():
    """The doctors' workbench and the staff admin share the admin's names: which one a link
    goes to follows the page's own site, as with Django's tag."""
    request = RequestFactory().get("/")
    request.user = AnonymousUser()
    request.current_app = "doctor_admin"
    doctors = Template("{% url 'admin:index' %}").render(RequestContext(request))
    staff = Template("{% url 'admin:index' %}").render(Context({}))
    assert doctors == reverse("admin:index", current_app="doctor_admin") != staff
    assert staff == reverse("admin:index")


def test_a_link_is_escaped_in_html_only():
    assert render("{% autoescape off %}{% url 'home' %}{% endautoescape %}") == reverse("home")
