"""Legal pages, the footer that links them, and pages that obey the Content-Security-Policy."""

import re

import pytest
from django.urls import reverse

from consultations import services

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("name", "heading"),
    [("terms", "Terms of use"), ("privacy", "Privacy policy"), ("disclaimer", "Medical disclaimer")],
)
def test_legal_page_renders_and_says_it_is_not_an_emergency_service(client, name, heading):
    response = client.get(reverse(name))
    html = response.content.decode()
    assert response.status_code == 200
    assert f"<h1>{heading}</h1>" in html
    assert "not an emergency service" in html.lower()


def test_footer_links_every_legal_page(client):
    html = client.get(reverse("terms")).content.decode()
    footer = html[html.index("<footer") :]
    for name in ("terms", "privacy", "disclaimer"):
        assert f'href="{reverse(name)}"' in footer
    assert "Not an emergency service." in footer


def patient_page_urls(question) -> list[str]:
    return [
        reverse("consultations:ask"),
        reverse("consultations:my_questions"),
        reverse("consultations:question_detail", args=[question.pk]),
        reverse("consultations:question_submitted", args=[question.pk]),
        reverse("profile"),
        reverse("password_change"),
        reverse("terms"),
        reverse("privacy"),
        reverse("disclaimer"),
    ]


INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I)
INLINE_HANDLER = re.compile(r"<[^>]+\son[a-z]+\s*=", re.I)
INLINE_STYLE = re.compile(r"<[^>]+\sstyle\s*=", re.I)


def assert_csp_clean(html: str, url: str):
    assert not INLINE_SCRIPT.search(html), f"inline <script> on {url}"
    assert not INLINE_HANDLER.search(html), f"inline event handler on {url}"
    assert not INLINE_STYLE.search(html), f"inline style on {url}"
    assert "<style" not in html, f"<style> block on {url}"


def test_patient_pages_have_no_inline_script_or_style(client, patient, specialty, doctor):
    question = services.submit_question(
        patient=patient,
        specialty=specialty,
        title="Chest pain when climbing stairs",
        description="For a week.",
        age=50,
        sex="male",
    )
    services.post_answer(question, doctor, "Please see a doctor today.")
    client.force_login(patient)
    for url in patient_page_urls(question):
        response = client.get(url)
        assert response.status_code == 200, url
        assert "Content-Security-Policy" in response, url
        assert_csp_clean(response.content.decode(), url)


def test_anonymous_account_pages_have_no_inline_script_or_style(client):
    for name in ("login", "signup", "signup_sent", "password_reset", "password_reset_done"):
        url = reverse(name)
        assert_csp_clean(client.get(url).content.decode(), url)
