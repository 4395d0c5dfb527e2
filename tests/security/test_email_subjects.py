"""E-mail subjects, and the first lines that phones preview under them, carry no clinical text.

Subjects show on lock screens, in shared family inboxes and in mail-server logs;
so do the first lines of the body in most mail apps' notifications. They say what
happened and the question's number; the title, the description and the specialty
stay in the body (below the fold) or behind the login.
"""

from pathlib import Path

import pytest
from django.conf import settings

from consultations.notifications import render_email
from tests.articles.factories import ArticleFactory
from tests.factories import DoctorFactory, QuestionFactory, SpecialtyFactory, UserFactory

MARKER = "Zqxmarker"
EMAIL_TEMPLATES = Path(settings.BASE_DIR) / "templates" / "emails"
KINDS = sorted(path.name.removesuffix("_subject.txt") for path in EMAIL_TEMPLATES.glob("*_subject.txt"))
# What a phone shows of the body under the subject: its first lines.
PREVIEW_LINES = 3


def preview(body: str) -> str:
    return "\n".join([line for line in body.splitlines() if line.strip()][:PREVIEW_LINES])


@pytest.fixture
def context(db):
    specialty = SpecialtyFactory(name=f"{MARKER} specialty", slug="marker")
    question = QuestionFactory(
        specialty=specialty,
        title=f"{MARKER} title",
        description=f"{MARKER} description",
        medical_history=f"{MARKER} history",
        current_medication=f"{MARKER} medication",
    )
    doctor = DoctorFactory(user=UserFactory(email="dana@example.com"), display_name="Dr. Dana", specialties=[specialty])
    return {
        "question": question,
        "doctor": doctor,
        "patient_label": question.patient_label,
        "specialty": specialty.name,
        "clock_due_at": question.due_at,
        "due": "Monday 1 June 2026, 14:00 UTC",
        "due_time": "14:00 UTC",
        "is_follow_up": False,
        "is_urgent": True,
        "never_warned": True,
        "time_zone": "UTC",
        "url": "https://portal.example/questions/1/",
        # Articles are public pages, not patients' words: their titles may appear.
        "article": ArticleFactory(),
        "reviewer": doctor,
        "admin_path": "/doctor/articles/article/1/change/",
        "public_path": "/articles/a/",
        "email": "reader@example.com",
        "confirm_url": "https://portal.example/c/",
        "unsubscribe_url": "https://portal.example/u/",
        "valid_days": 7,
    }


def test_every_email_kind_is_checked():
    assert {"question_received", "answer_posted", "information_requested", "sla_breached"} <= set(KINDS)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("is_follow_up", [False, True])
def test_subject_carries_no_title_description_or_specialty(context, kind, is_follow_up):
    """Issue 11 item 17: no clinical text (title, description, history, specialty) in any subject."""
    subject, _body = render_email(kind, {**context, "is_follow_up": is_follow_up})
    assert subject
    assert MARKER not in subject


@pytest.mark.parametrize("kind", KINDS)
def test_body_preview_carries_no_title(context, kind):
    """Issue 11 item 17: the lines a lock screen previews under the subject do not name the question."""
    _subject, body = render_email(kind, context)
    assert f"{MARKER} title" not in preview(body)


@pytest.mark.parametrize("kind", ["question_received", "answer_posted", "information_requested"])
def test_patient_emails_say_which_question_by_number(context, kind):
    subject, body = render_email(kind, context)
    assert f"#{context['question'].pk}" in subject
    # The patient still finds the title further down, inside the e-mail.
    assert f"{MARKER} title" in body
