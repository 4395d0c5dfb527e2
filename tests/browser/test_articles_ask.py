"""In a real browser: a reader searches the health articles, opens one and asks a
doctor from it, landing on the ask form with the article's specialty chosen."""

import pytest
from playwright.sync_api import expect

from tests.articles.factories import ArticleFactory, SourceFactory
from tests.factories import PASSWORD, DoctorFactory, SpecialtyFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def published_articles(db):
    SpecialtyFactory(name="General Medicine", slug="general-medicine")
    dermatology = SpecialtyFactory(name="Dermatology", slug="dermatology")
    cardiology = SpecialtyFactory(name="Cardiology", slug="cardiology")
    author = DoctorFactory(display_name="Dr. Ada Author", specialties=[dermatology])
    reviewer = DoctorFactory(display_name="Dr. Rex Reviewer", specialties=[dermatology])
    acne = ArticleFactory(
        title="What causes adult acne?",
        slug="what-causes-adult-acne",
        summary="Why acne can start after your teens, and what helps.",
        body_markdown="## Why do adults get acne?\n\n- Hormones\n- Cosmetics\n\n## What helps?\n\n- Gentle cleansing",
        specialty=dermatology,
        author=author,
        reviewer=reviewer,
    )
    SourceFactory(article=acne, title="NHS: Health A to Z", url="https://www.nhs.uk/conditions/")
    ArticleFactory(
        title="Living with high blood pressure",
        body_markdown="Less salt lowers blood pressure.",
        specialty=cardiology,
        author=reviewer,
        reviewer=author,
    )
    return acne


def _search_open_and_ask(page, article):
    page.goto("/articles/")
    page.get_by_label("Search articles").fill("acne")
    page.get_by_role("button", name="Search").click()
    results = page.get_by_test_id("article-results")
    # Waits for the results page (reading the links at once could still read the unfiltered list).
    expect(results.get_by_role("link")).to_have_text([article.title])

    results.get_by_role("link", name=article.title).click()
    page.wait_for_url(f"**{article.get_absolute_url()}")
    assert page.get_by_role("heading", level=1).inner_text() == article.title
    assert page.get_by_test_id("verified-badge").is_visible()
    assert page.get_by_text("Ask a doctor online now: guaranteed answer within 4 hours").is_visible()

    page.get_by_test_id("ask-doctor").click()


def _assert_on_ask_form_with(page, specialty):
    page.wait_for_url("**/questions/ask/?specialty=dermatology")
    select = page.locator("select[name=specialty]")
    assert select.input_value() == str(specialty.pk)
    assert select.locator("option:checked").inner_text() == specialty.name


def test_signed_in_reader_searches_opens_article_and_asks_with_specialty_selected(
    browser_page, log_in, published_articles
):
    page = browser_page
    UserFactory(email="reader@example.com")
    log_in(page, "reader@example.com", PASSWORD)

    _search_open_and_ask(page, published_articles)

    _assert_on_ask_form_with(page, published_articles.specialty)
    assert page.console_errors == []


def test_anonymous_reader_is_sent_through_login_and_keeps_the_specialty(browser_page, published_articles):
    page = browser_page
    UserFactory(email="reader@example.com")

    _search_open_and_ask(page, published_articles)

    # Issue 15: the question comes first; a returning patient logs in from there.
    page.wait_for_url("**/questions/ask/**")
    page.locator("#ask-first-login").click()
    page.wait_for_url("**/accounts/login/**")
    page.get_by_label("E-mail address").fill("reader@example.com")
    page.locator("#id_password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()

    _assert_on_ask_form_with(page, published_articles.specialty)
    assert page.console_errors == []
