"""Asking a question: the happy path, and every kind of bad input giving a message
next to the field while keeping what the patient typed."""

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.urls import reverse
from django.utils.html import escape

from consultations.models import Attachment, Notification, Question, QuestionStatus
from tests.portal.sample_files import (
    ELF_BYTES,
    HTML_BYTES,
    SVG_BYTES,
    WINDOWS_EXE_BYTES,
    jpeg_with_location,
    pdf_bytes,
    png_upload,
    upload,
)

pytestmark = pytest.mark.django_db

ASK_URL = reverse("consultations:ask")


@pytest.fixture
def ask_data(specialty):
    return {
        "specialty": str(specialty.pk),
        "title": "Itchy rash on both forearms",
        "description": "Red, itchy spots on both forearms for five days.\nWorse after showering.",
        "age": "34",
        "sex": "female",
        "medical_history": "Mild eczema as a child.",
        "current_medication": "Cetirizine 10 mg at night.",
        "consent": "on",
    }


@pytest.fixture
def patient_client(client, patient):
    client.force_login(patient)
    return client


def error_block(html: str, field: str) -> str:
    """The error block crispy renders directly under the field's input."""
    match = re.search(rf'<div id="id_{field}_error" class="invalid-feedback">(.*?)</div>', html, re.S)
    assert match, f"no error block next to {field}"
    return match.group(1)


def assert_error_next_to(response, field: str, text: str):
    assert response.status_code == 200
    form = response.context["form"]
    assert any(text in message for message in form.errors[field]), form.errors
    assert escape(text) in error_block(response.content.decode(), field)


def assert_typed_values_kept(response, data: dict):
    html = response.content.decode()
    form = response.context["form"]
    for name, value in data.items():
        if name in ("consent",):
            assert re.search(r'<input[^>]*name="consent"[^>]*checked', html), "consent tick lost"
        elif name in ("specialty", "sex"):
            assert re.search(rf'<option value="{re.escape(value)}" selected>', html), f"{name} selection lost"
        elif name in ("description", "medical_history", "current_medication"):
            assert f">\n{escape(value)}</textarea>" in html, f"{name} text lost"
        else:
            assert f'value="{escape(value)}"' in html, f"{name} value lost"
        assert str(form[name].value()) == str(value) or name == "consent"


# --- Happy path -------------------------------------------------------------------------


def test_anonymous_visitor_starts_with_the_question_and_the_specialty_link(client, specialty):
    """Issue 15 (question first): no login wall; the specialty link still preselects."""
    response = client.get(ASK_URL + f"?specialty={specialty.slug}")
    assert response.status_code == 200
    assert response.context["form"]["specialty"].value() == specialty.pk


def test_form_is_prefilled_from_profile_and_specialty_link(patient_client, specialty, other_specialty):
    response = patient_client.get(ASK_URL + f"?specialty={other_specialty.slug}")
    form = response.context["form"]
    assert form["specialty"].value() == other_specialty.pk
    assert form["age"].value() == 34
    assert form["sex"].value() == "female"
    assert f'<option value="{other_specialty.pk}" selected>' in response.content.decode()


def test_unknown_specialty_in_link_preselects_nothing(patient_client, specialty):
    response = patient_client.get(ASK_URL + "?specialty=no-such-thing")
    assert response.context["form"]["specialty"].value() is None


def test_question_is_saved_with_guarantee_and_confirmation(
    patient_client, patient, specialty, ask_data, django_capture_on_commit_callbacks
):
    files = [upload("me.jpg", jpeg_with_location()), upload("letter.pdf", pdf_bytes())]
    with django_capture_on_commit_callbacks(execute=True):
        response = patient_client.post(ASK_URL, {**ask_data, "attachments": files})
    question = Question.objects.get()
    assert response.status_code == 302
    assert response.url == reverse("consultations:question_submitted", args=[question.pk])
    assert question.patient == patient
    assert question.specialty == specialty
    assert question.status == QuestionStatus.OPEN
    assert question.description == ask_data["description"]
    assert question.due_at - question.submitted_at == timedelta(hours=4)
    assert not question.is_urgent
    stored = list(question.attachments.order_by("pk"))
    assert [(a.original_name, a.content_type) for a in stored] == [
        ("me.jpg", "image/jpeg"),
        ("letter.pdf", "application/pdf"),
    ]
    with stored[0].file.open("rb") as handle:
        assert b"SecretCam" not in handle.read()
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["patient@example.com"]
    # The subject names the question by number only (lock screens); the title is in the body.
    assert mail.outbox[0].subject == f"We received your question #{question.pk}"
    assert "Itchy rash on both forearms" in mail.outbox[0].body


def test_crlf_line_breaks_count_once_against_the_limit(patient_client, ask_data):
    # Browsers enforce maxlength counting a line break as one character but send "\r\n".
    description = ("x" * 99 + "\r\n") * 50  # 5000 characters as the browser counts them
    response = patient_client.post(ASK_URL, {**ask_data, "description": description})
    assert response.status_code == 302
    assert Question.objects.get().description == description.replace("\r\n", "\n").strip()


def test_red_flag_question_is_urgent_and_success_page_repeats_the_notice(patient_client, ask_data):
    data = {**ask_data, "description": "For an hour I have had chest pain going into my left arm."}
    response = patient_client.post(ASK_URL, data, follow=True)
    question = Question.objects.get()
    assert question.is_urgent
    assert "chest pain" in question.red_flags
    html = response.content.decode()
    assert "Call your local emergency number now" in html
    assert 'id="red-flag-notice" hidden' not in html


def test_ask_page_carries_the_red_flag_phrases_for_the_live_notice(patient_client):
    html = patient_client.get(ASK_URL).content.decode()
    assert "data-red-flags=" in html
    assert "&quot;chest pain&quot;" in html
    assert 'id="red-flag-notice" hidden' in html
    assert "not an emergency service" in html


def test_redisplayed_form_with_red_flags_shows_the_notice_without_javascript(patient_client, ask_data):
    data = {**ask_data, "description": "I keep thinking about suicide.", "age": ""}
    html = patient_client.post(ASK_URL, data).content.decode()
    assert "Call your local emergency number now" in html
    assert 'id="red-flag-notice" hidden' not in html


# --- Bad input: each gives a message next to the field and keeps what was typed ---------------


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ("specialty", "Choose the specialty your question is for."),
        ("title", "Give your question a short title."),
        ("description", "Describe your symptoms or your question."),
        ("age", "Enter the age of the person the question is about."),
        ("sex", "Choose the sex of the person the question is about."),
        ("consent", "You need to agree to the terms before sending your question."),
    ],
)
def test_missing_required_field_is_named_next_to_it(patient_client, ask_data, field, message):
    data = {name: value for name, value in ask_data.items() if name != field}
    response = patient_client.post(ASK_URL, data)
    assert_error_next_to(response, field, message)
    assert_typed_values_kept(response, data)
    assert not Question.objects.exists()


def test_whitespace_only_title_counts_as_missing(patient_client, ask_data):
    response = patient_client.post(ASK_URL, {**ask_data, "title": "   "})
    assert_error_next_to(response, "title", "Give your question a short title.")
    assert not Question.objects.exists()


@pytest.mark.parametrize(
    ("field", "limit"),
    [("title", 150), ("description", 5000), ("medical_history", 3000), ("current_medication", 2000)],
)
def test_too_long_text_is_refused_and_kept(patient_client, ask_data, field, limit):
    data = {**ask_data, field: "a" * (limit + 1)}
    response = patient_client.post(ASK_URL, data)
    assert_error_next_to(response, field, f"Ensure this value has at most {limit} characters (it has {limit + 1}).")
    assert_typed_values_kept(response, data)
    assert not Question.objects.exists()


@pytest.mark.parametrize(
    ("age", "message"),
    [
        ("-1", "Age cannot be below 0."),
        ("121", "Age must be 120 or below."),
        ("abc", "Enter the age as a whole number of years, e.g. 34."),
        ("12.5", "Enter the age as a whole number of years, e.g. 34."),
    ],
)
def test_age_out_of_range_or_not_a_number_is_refused(patient_client, ask_data, age, message):
    data = {**ask_data, "age": age}
    response = patient_client.post(ASK_URL, data)
    assert_error_next_to(response, "age", message)
    assert_typed_values_kept(response, data)
    assert not Question.objects.exists()


@pytest.mark.parametrize("age", ["0", "120"])
def test_age_limits_are_inclusive(patient_client, ask_data, age):
    assert patient_client.post(ASK_URL, {**ask_data, "age": age}).status_code == 302


def test_unknown_specialty_or_sex_is_refused(patient_client, ask_data):
    response = patient_client.post(ASK_URL, {**ask_data, "specialty": "999999", "sex": "robot"})
    form = response.context["form"]
    assert "specialty" in form.errors and "sex" in form.errors
    assert not Question.objects.exists()


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("holiday.png", ELF_BYTES),
        ("holiday.png", WINDOWS_EXE_BYTES),
        ("page.png", HTML_BYTES),
        ("drawing.png", SVG_BYTES),
        ("photo.jpg", HTML_BYTES),
    ],
    ids=["elf-as-png", "exe-as-png", "html-as-png", "svg-as-png", "html-as-jpg"],
)
def test_disguised_file_is_refused_next_to_the_attachments(patient_client, ask_data, name, content):
    response = patient_client.post(ASK_URL, {**ask_data, "attachments": [upload(name, content, "image/png")]})
    assert_error_next_to(response, "attachments", f"“{name}” is not a JPEG, PNG or PDF file")
    assert_typed_values_kept(response, ask_data)
    assert not Question.objects.exists()
    assert not Attachment.objects.exists()


def test_eleven_megabyte_file_is_refused(patient_client, ask_data):
    big = upload("scan.pdf", pdf_bytes() + b"0" * (11 * 1024 * 1024))
    response = patient_client.post(ASK_URL, {**ask_data, "attachments": [big]})
    assert_error_next_to(response, "attachments", "“scan.pdf” is 11 MB; each file may be at most 10 MB.")
    assert_typed_values_kept(response, ask_data)
    assert not Question.objects.exists()


def test_sixth_attachment_is_refused(patient_client, ask_data):
    files = [png_upload(f"photo{n}.png") for n in range(6)]
    response = patient_client.post(ASK_URL, {**ask_data, "attachments": files})
    assert_error_next_to(response, "attachments", "You attached 6 files; at most 5 are allowed per question.")
    assert_typed_values_kept(response, ask_data)
    assert not Question.objects.exists()


def test_five_attachments_are_accepted(patient_client, ask_data):
    files = [png_upload(f"photo{n}.png") for n in range(5)]
    assert patient_client.post(ASK_URL, {**ask_data, "attachments": files}).status_code == 302
    assert Attachment.objects.count() == 5


def test_zero_byte_file_is_refused(patient_client, ask_data):
    response = patient_client.post(ASK_URL, {**ask_data, "attachments": [upload("empty.png", b"")]})
    assert_error_next_to(response, "attachments", "“empty.png” is empty (0 bytes).")
    assert not Question.objects.exists()


def test_redisplay_asks_to_attach_files_again(patient_client, ask_data):
    # The files were fine but the title is missing: the browser cannot keep them.
    data = {**ask_data, "title": "", "attachments": [png_upload()]}
    html = patient_client.post(ASK_URL, data).content.decode()
    assert "please attach your files again" in html
    assert not Question.objects.exists()


def test_redisplay_without_files_does_not_mention_them(patient_client, ask_data):
    html = patient_client.post(ASK_URL, {**ask_data, "title": ""}).content.decode()
    assert "please attach your files again" not in html


def test_script_tags_are_kept_escaped_on_redisplay(patient_client, ask_data):
    data = {**ask_data, "title": '<script>alert("title")</script>', "age": "abc"}
    response = patient_client.post(ASK_URL, data)
    html = response.content.decode()
    assert '<script>alert("title")</script>' not in html
    assert_typed_values_kept(response, data)


def test_script_tags_in_the_text_are_shown_escaped_on_the_question_page(patient_client, ask_data):
    data = {
        **ask_data,
        "title": "<script>alert('t')</script> rash",
        "description": "<script>document.location='https://evil.example'</script>\n<b>bold?</b>",
        "medical_history": "<img src=x onerror=alert(1)>",
    }
    patient_client.post(ASK_URL, data)
    question = Question.objects.get()
    assert question.title == data["title"]  # stored as typed, escaped only on output
    html = patient_client.get(reverse("consultations:question_detail", args=[question.pk])).content.decode()
    assert "<script>alert('t')</script>" not in html
    assert "<script>document.location" not in html
    assert "<img src=x" not in html
    assert "&lt;script&gt;alert(&#x27;t&#x27;)&lt;/script&gt; rash" in html
    assert "&lt;b&gt;bold?&lt;/b&gt;" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html


def test_get_request_creates_nothing(patient_client):
    patient_client.get(ASK_URL)
    assert not Question.objects.exists()
    assert not Notification.objects.exists()


# --- One submission, one question ---------------------------------------------------------

TOKEN_INPUT = re.compile(r'<input type="hidden" name="submission_token" value="([0-9a-f-]{36})"')


def form_token(html: str) -> str:
    match = TOKEN_INPUT.search(html)
    assert match, "no submission token in the form"
    return match.group(1)


def test_each_form_shown_carries_its_own_submission_token(patient_client):
    """Issue 11 item 10: a fresh one-time token per form, hidden in it."""
    response = patient_client.get(ASK_URL)
    first = form_token(response.content.decode())
    second = form_token(patient_client.get(ASK_URL).content.decode())
    assert first != second
    # No shared cache may hand one patient's form (and token) to a later visit.
    assert "private" in response["Cache-Control"] and "no-cache" in response["Cache-Control"]


def test_a_replayed_form_makes_one_question_and_leads_to_it(
    patient_client, ask_data, django_capture_on_commit_callbacks
):
    """Issue 11 item 10: the same post sent again (double click, Back and send, a
    replay) finds the question already made: one question, one clock, one e-mail."""
    data = {**ask_data, "submission_token": form_token(patient_client.get(ASK_URL).content.decode())}
    with django_capture_on_commit_callbacks(execute=True):
        first = patient_client.post(ASK_URL, {**data, "attachments": [png_upload()]})
        again = patient_client.post(ASK_URL, {**data, "attachments": [png_upload()]}, follow=True)

    question = Question.objects.get()
    assert first.url == reverse("consultations:question_submitted", args=[question.pk])
    assert again.redirect_chain == [(first.url, 302)]
    assert "We had already received this question, so it was sent only once." in again.content.decode()
    assert Attachment.objects.count() == 1
    assert Notification.objects.filter(kind="question_received").count() == 1
    assert len(mail.outbox) == 1


def test_a_new_form_after_sending_makes_a_new_question(patient_client, ask_data):
    """Issue 11 item 10: the token stops copies, not a second question asked on purpose."""
    for _ in range(2):
        token = form_token(patient_client.get(ASK_URL).content.decode())
        assert patient_client.post(ASK_URL, {**ask_data, "submission_token": token}).status_code == 302
    assert Question.objects.count() == 2


def test_the_token_of_another_patient_never_leads_to_their_question(client, patient, other_patient, ask_data):
    """Issue 11 item 10: tokens are unique per patient; reusing someone else's
    makes the sender's own question and shows nothing of theirs."""
    client.force_login(patient)
    token = form_token(client.get(ASK_URL).content.decode())
    client.post(ASK_URL, {**ask_data, "submission_token": token})
    client.force_login(other_patient)
    response = client.post(ASK_URL, {**ask_data, "title": "Mine", "submission_token": token})
    theirs = Question.objects.get(patient=other_patient)
    assert response.url == reverse("consultations:question_submitted", args=[theirs.pk])
    assert theirs.title == "Mine"


def test_a_redisplayed_form_keeps_its_token(patient_client, ask_data):
    """Issue 11 item 10: fixing a mistake and sending is still the same submission."""
    token = form_token(patient_client.get(ASK_URL).content.decode())
    html = patient_client.post(ASK_URL, {**ask_data, "title": "", "submission_token": token}).content.decode()
    assert form_token(html) == token


@pytest.mark.parametrize("token", [None, "", "not-a-token", "<script>"])
def test_a_post_without_a_usable_token_is_still_saved_and_redisplays_with_a_fresh_one(patient_client, ask_data, token):
    """Issue 11 item 10: a page from before tokens (or a hand-made post) loses nothing;
    from its redisplay on, the form is protected like any other."""
    data = dict(ask_data) if token is None else {**ask_data, "submission_token": token}
    redisplay = patient_client.post(ASK_URL, {**data, "title": ""}).content.decode()
    assert len(form_token(redisplay)) == 36
    assert patient_client.post(ASK_URL, data).status_code == 302
    assert Question.objects.get().submission_token is not None
