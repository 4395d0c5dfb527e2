"""Question first (issue 15, "Patients: Question first"): a visitor types the question
before signing up or logging in; the draft is kept server side through login and
through a sign-up finished by the e-mailed link, expires, and is never shown to
anyone but the person who typed it. Nothing is sent until the patient confirms."""

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from consultations import drafts
from consultations.models import Question, QuestionDraft
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

ASK_URL = reverse("consultations:ask")
SIGNUP_URL = reverse("signup")
LOGIN_URL = reverse("login")
NEW_PASSWORD = "a-Long-new-passphrase-42"
TITLE = "Ring-shaped rash after hiking in Bieszczady"
DESCRIPTION = "Red, itchy spots on both forearms for five days. Worse after showering."
WAITING = "Sign up or log in to send your question to a doctor; your question is saved."


@pytest.fixture
def draft_data(specialty):
    return {"specialty": str(specialty.pk), "title": TITLE, "description": DESCRIPTION}


@pytest.fixture
def signup_data():
    return {
        "email": "nora@example.com",
        "full_name": "Nora Newpatient",
        "password1": NEW_PASSWORD,
        "password2": NEW_PASSWORD,
        "age": "29",
        "sex": "female",
        "detected_time_zone": "Europe/Warsaw",
        "time_zone": "",
        "accept_terms": "on",
    }


def rest_of_the_form(client) -> dict:
    """The signed-in ask form as shown, with the details the draft lacked filled in."""
    form = client.get(ASK_URL).context["form"]
    return {
        "specialty": str(form.initial["specialty"]),
        "title": form.initial["title"],
        "description": form.initial["description"],
        "age": "29",
        "sex": "female",
        "consent": "on",
        "submission_token": str(form.initial["submission_token"]),
    }


def finish_link(outbox) -> str:
    return re.search(r"https?://[^/\s]+(/accounts/signup/finish/\S+/)", outbox[-1].body).group(1)


def test_a_visitor_writes_the_question_first_and_is_sent_to_sign_up(client, draft_data, specialty):
    page = client.get(ASK_URL)
    assert page.status_code == 200
    html = page.content.decode()
    assert 'name="csrfmiddlewaretoken"' in html
    assert 'name="title"' in html and 'name="age"' not in html and 'name="attachments"' not in html
    assert page["X-Robots-Tag"] == "noindex, nofollow"
    assert '<meta name="robots" content="noindex, nofollow">' in html
    assert "no-store" in page["Cache-Control"] and "private" in page["Cache-Control"]

    response = client.post(ASK_URL, draft_data)
    assert response.status_code == 302
    assert response.url == f"{SIGNUP_URL}?next=%2Fquestions%2Fask%2F"
    # No clinical text in the URL; the draft is kept on the server, not sent.
    assert "rash" not in response.url.lower()
    draft = QuestionDraft.objects.get()
    assert (draft.title, draft.description, draft.specialty, draft.owner) == (TITLE, DESCRIPTION, specialty, None)
    assert Question.objects.count() == 0
    assert WAITING in client.get(response.url).content.decode()
    login_page = client.get(f"{LOGIN_URL}?next={ASK_URL}").content.decode()
    assert WAITING in login_page
    assert f'href="{SIGNUP_URL}?next={ASK_URL}">Create an account</a> instead.' in login_page
    # Back on the ask page, what was typed is still there.
    again = client.get(ASK_URL)
    assert again.context["form"].initial["title"] == TITLE


def test_bad_draft_is_explained_next_to_the_field_and_kept(client, draft_data):
    response = client.post(ASK_URL, {**draft_data, "title": ""})
    assert response.status_code == 200
    assert "Give your question a short title." in response.content.decode()
    assert DESCRIPTION in response.content.decode()
    assert QuestionDraft.objects.count() == 0


def test_login_and_sign_up_pages_say_nothing_of_a_question_without_one(client):
    assert WAITING not in client.get(LOGIN_URL).content.decode()
    assert WAITING not in client.get(SIGNUP_URL).content.decode()


def test_the_draft_is_kept_through_login_and_sent_only_when_confirmed(client, draft_data, patient, specialty):
    client.post(ASK_URL, draft_data)
    response = client.post(f"{LOGIN_URL}?next={ASK_URL}", {"username": patient.email, "password": PASSWORD})
    assert response.status_code == 302 and response.url == ASK_URL
    page = client.get(ASK_URL)
    form = page.context["form"]
    assert (form.initial["specialty"], form.initial["title"], form.initial["description"]) == (
        specialty.pk,
        TITLE,
        DESCRIPTION,
    )
    assert "Your question is saved." in page.content.decode()
    assert QuestionDraft.objects.get().owner == patient
    assert Question.objects.count() == 0  # nothing sent before the patient confirms

    done = client.post(ASK_URL, rest_of_the_form(client))
    question = Question.objects.get()
    assert done.url == reverse("consultations:question_submitted", args=[question.pk])
    assert (question.patient, question.title, question.description) == (patient, TITLE, DESCRIPTION)
    assert QuestionDraft.objects.count() == 0
    assert client.get(ASK_URL).context["form"].initial.get("title") is None


def test_the_draft_is_kept_through_a_sign_up_finished_in_the_same_browser(client, draft_data, signup_data):
    client.post(ASK_URL, draft_data)
    client.post(f"{SIGNUP_URL}?next={ASK_URL}", {**signup_data, "next": ASK_URL})
    sent = client.get(reverse("signup_sent")).content.decode()
    assert "Your question is saved" in sent
    assert f'href="{LOGIN_URL}?next={ASK_URL}">Log in</a>' in sent
    (message,) = mail.outbox
    assert "rash" not in message.subject.lower() and "rash" not in message.body.lower()

    done = client.post(finish_link(mail.outbox), {"password": NEW_PASSWORD})
    assert done.url == ASK_URL
    assert client.get(ASK_URL).context["form"].initial["title"] == TITLE
    client.post(ASK_URL, rest_of_the_form(client))
    assert Question.objects.get().patient.email == "nora@example.com"


def test_the_draft_follows_a_sign_up_finished_in_another_browser(client, draft_data, signup_data):
    client.post(ASK_URL, draft_data)
    client.post(SIGNUP_URL, signup_data)
    phone = Client()  # the e-mail is opened in the phone's mail app
    done = phone.post(finish_link(mail.outbox), {"password": NEW_PASSWORD})
    assert done.url == ASK_URL
    assert phone.get(ASK_URL).context["form"].initial["title"] == TITLE
    phone.post(ASK_URL, rest_of_the_form(phone))
    assert Question.objects.get().title == TITLE


def test_a_wrong_password_on_the_link_does_not_hand_over_the_draft(client, draft_data, signup_data):
    client.post(ASK_URL, draft_data)
    client.post(SIGNUP_URL, signup_data)
    stranger = Client()
    stranger.post(finish_link(mail.outbox), {"password": "not-the-sign-up-password-1"})
    assert QuestionDraft.objects.get().owner is None


def test_an_expired_draft_is_gone(client, draft_data, patient, settings):
    client.post(ASK_URL, draft_data)
    QuestionDraft.objects.update(saved_at=timezone.now() - timedelta(hours=settings.QUESTION_DRAFT_HOURS, seconds=1))
    assert WAITING not in client.get(SIGNUP_URL).content.decode()
    client.force_login(patient)
    assert client.get(ASK_URL).context["form"].initial.get("title") is None
    assert drafts.purge_expired() == 1
    assert QuestionDraft.objects.count() == 0


def test_saving_a_draft_deletes_expired_ones(client, draft_data, settings):
    old = QuestionDraft.objects.create(
        token_hash="0" * 64, title="old", description="old", saved_at=timezone.now() - timedelta(days=2)
    )
    client.post(ASK_URL, draft_data)
    assert not QuestionDraft.objects.filter(pk=old.pk).exists()


def test_another_session_cannot_read_the_draft(client, draft_data, patient, other_patient):
    client.post(ASK_URL, draft_data)
    neighbour = Client()
    assert TITLE not in neighbour.get(ASK_URL).content.decode()
    assert WAITING not in neighbour.get(SIGNUP_URL).content.decode()
    neighbour.force_login(other_patient)
    assert TITLE not in neighbour.get(ASK_URL).content.decode()
    assert QuestionDraft.objects.get().owner is None


def test_a_claimed_draft_never_appears_for_another_user(client, draft_data, patient, other_patient):
    client.post(ASK_URL, draft_data)
    client.force_login(patient)
    assert TITLE in client.get(ASK_URL).content.decode()
    # Logging out ends the session (and its token); the next person on this browser sees nothing.
    client.post(reverse("logout"))
    assert TITLE not in client.get(ASK_URL).content.decode()
    client.force_login(other_patient)
    assert TITLE not in client.get(ASK_URL).content.decode()
    assert TITLE not in client.get(reverse("consultations:my_questions")).content.decode()
    assert QuestionDraft.objects.get().owner == patient


def test_a_newer_sign_up_for_the_same_address_takes_only_its_own_draft(draft_data, signup_data):
    first, second = Client(), Client()
    first.post(ASK_URL, draft_data)
    first.post(SIGNUP_URL, signup_data)
    second.post(ASK_URL, {**draft_data, "title": "Second visitor's question"})
    second.post(SIGNUP_URL, signup_data)
    owner_of = {draft.title: draft.pending_user_id for draft in QuestionDraft.objects.all()}
    assert owner_of[TITLE] is None
    assert owner_of["Second visitor's question"] is not None


def test_the_anonymous_ask_form_is_rate_limited(client, draft_data, settings):
    from portal import ratelimit

    settings.RATELIMIT_ENABLED = True
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "ask": (2, 3600)}
    ratelimit.reset("ask", "ip:127.0.0.1", 3600)
    assert [client.post(ASK_URL, draft_data).status_code for _ in range(3)] == [302, 302, 429]
    assert QuestionDraft.objects.count() == 1  # the same session's draft, replaced


def test_the_ask_page_is_disallowed_to_robots(client):
    assert "Disallow: /questions/" in client.get("/robots.txt").content.decode()


def test_beat_deletes_expired_drafts(settings):
    from consultations.tasks import purge_question_drafts
    from portal.celery import app

    schedule = {entry["task"] for entry in app.conf.beat_schedule.values()}
    assert "consultations.tasks.purge_question_drafts" in schedule
    QuestionDraft.objects.create(
        token_hash="1" * 64, title="old", description="old", saved_at=timezone.now() - timedelta(days=2)
    )
    QuestionDraft.objects.create(token_hash="2" * 64, title="new", description="new")
    assert purge_question_drafts() == 1
    assert list(QuestionDraft.objects.values_list("title", flat=True)) == ["new"]


def test_the_anonymous_ask_page_never_goes_through_the_shared_page_cache(client, monkeypatch):
    """The anonymous page cache (articles/cache.py) shares one copy among visitors: the
    ask page, which carries a CSRF token and may carry a visitor's draft, never enters it."""
    from articles import cache as article_cache

    touched = []
    monkeypatch.setattr(article_cache, "get_page", lambda *args: touched.append("get") or (None, None))
    monkeypatch.setattr(article_cache, "put_page", lambda *args, **kwargs: touched.append("put"))
    assert client.get("/").status_code == 200
    assert touched  # the check is live: the home page does use the shared cache
    touched.clear()
    for _ in range(2):
        response = client.get(ASK_URL)
        assert "public" not in response["Cache-Control"]
    assert touched == []
