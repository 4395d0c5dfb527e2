"""The 404 page is the site's own (issue 15): its header, footer and icon, a search box
and links onward, and still a 404."""

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


@pytest.fixture
def browser(settings):
    settings.DEBUG = False
    return Client()


def test_the_404_page_has_the_sites_icon_and_a_way_on(browser):
    response = browser.get("/no/such/page/")
    assert response.status_code == 404
    html = response.content.decode()
    assert '<link rel="icon" href="/static/portal/favicon.svg" type="image/svg+xml">' in html
    assert "Page not found" in html and 'aria-label="Main"' in html
    assert 'action="/articles/"' in html and 'href="/questions/ask/"' in html
    assert '<meta name="robots" content="noindex">' in html


def test_a_question_that_is_not_yours_gets_the_same_page(browser, other_patient, patient, specialty):
    from tests.factories import QuestionFactory

    question = QuestionFactory(patient=other_patient, specialty=specialty)
    browser.force_login(patient)
    response = browser.get(question.get_absolute_url())
    assert response.status_code == 404 and "Page not found" in response.content.decode()
