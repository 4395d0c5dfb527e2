"""Privacy on the patient side: another patient gets 404 everywhere a question or its
files are reachable; an anonymous visitor is sent to log in."""

import pytest
from django.core.files.base import ContentFile
from django.urls import reverse

from consultations import services
from consultations.models import AccessLog, Attachment, Question, QuestionStatus
from tests.factories import QuestionFactory
from tests.portal.sample_files import png_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def question(patient, specialty):
    return QuestionFactory(patient=patient, specialty=specialty, title="My private rash", is_urgent=False)


@pytest.fixture
def answered_question(patient, specialty, doctor):
    question = QuestionFactory(patient=patient, specialty=specialty, is_urgent=False)
    services.post_answer(question, doctor, "Probably contact dermatitis; try a fragrance-free soap.")
    question.refresh_from_db()
    return question


@pytest.fixture
def attachment(question):
    return Attachment.objects.create(
        question=question,
        file=ContentFile(png_bytes(), name="x"),
        original_name="paula-forearm.png",
        content_type="image/png",
        size=len(png_bytes()),
    )


def owner_pages(question):
    return [
        reverse("consultations:question_detail", args=[question.pk]),
        reverse("consultations:question_submitted", args=[question.pk]),
    ]


def owner_actions(question):
    return [
        (reverse("consultations:follow_up", args=[question.pk]), {"body": "Is it contagious?"}),
        (reverse("consultations:rate", args=[question.pk]), {"rating": "1", "comment": "spam"}),
        (reverse("consultations:close", args=[question.pk]), {}),
    ]


def test_another_patient_gets_404_on_every_page_of_the_question(client, other_patient, question):
    client.force_login(other_patient)
    for url in owner_pages(question):
        assert client.get(url).status_code == 404, url


def test_another_patient_gets_404_on_every_action_and_nothing_changes(client, other_patient, answered_question):
    client.force_login(other_patient)
    for url, data in owner_actions(answered_question):
        assert client.post(url, data).status_code == 404, url
    answered_question.refresh_from_db()
    assert answered_question.status == QuestionStatus.ANSWERED
    assert answered_question.rating is None
    assert list(answered_question.replies.values_list("kind", flat=True)) == ["answer"]


def test_another_patient_gets_404_on_the_attachment(client, other_patient, attachment):
    client.force_login(other_patient)
    assert client.get(reverse("consultations:attachment", args=[attachment.pk])).status_code == 404
    assert not AccessLog.objects.exists()


def test_another_patient_does_not_see_the_question_in_their_list(client, other_patient, question):
    client.force_login(other_patient)
    html = client.get(reverse("consultations:my_questions")).content.decode()
    assert "My private rash" not in html


def test_unknown_ids_are_404_too(client, patient):
    client.force_login(patient)
    assert client.get(reverse("consultations:question_detail", args=[999999])).status_code == 404
    assert client.get(reverse("consultations:attachment", args=[999999])).status_code == 404


def test_anonymous_visitor_is_sent_to_log_in(client, question, attachment):
    # The ask page is open to visitors since issue 15 (question first): tests/consultations/test_question_first.py.
    urls = [*owner_pages(question), reverse("consultations:my_questions")]
    urls.append(reverse("consultations:attachment", args=[attachment.pk]))
    for url in urls:
        response = client.get(url)
        assert response.status_code == 302, url
        assert response.url == f"{reverse('login')}?next={url}", url
    for url, data in owner_actions(question):
        response = client.post(url, data)
        assert response.status_code == 302
        assert response.url.startswith(reverse("login"))
    assert Question.objects.get().status == QuestionStatus.OPEN


def test_doctor_cannot_act_as_the_patient(client, doctor, answered_question):
    """Doctors see the question in their workbench, not through the patient's pages."""
    client.force_login(doctor.user)
    assert client.get(reverse("consultations:question_detail", args=[answered_question.pk])).status_code == 404
    for url, data in owner_actions(answered_question):
        assert client.post(url, data).status_code == 404


# --- Issue 16 (boundaries): the patient pages reach questions through access.py -----


def test_access_gives_the_patient_pages_only_the_users_own_questions(patient, other_patient, question):
    """One rule per object type in consultations/access.py: the patient pages' rule is
    "your own questions", for everyone (a doctor or clinical staff member acting as a
    patient sees only their own there; their tools use questions_visible_to)."""
    from django.contrib.auth.models import AnonymousUser
    from django.http import Http404

    from consultations import access

    assert list(access.own_questions(patient)) == [question]
    assert access.own_question(patient, question.pk) == question
    assert not access.own_questions(other_patient).exists()
    assert not access.own_questions(AnonymousUser()).exists()
    for user, pk in [(other_patient, question.pk), (patient, 999999), (patient, "x"), (AnonymousUser(), question.pk)]:
        with pytest.raises(Http404):
            access.own_question(user, pk)


def test_patient_views_do_not_query_questions_themselves():
    """The patient-facing modules hold no rule of their own on whose question it is."""
    from pathlib import Path

    import consultations

    root = Path(consultations.__file__).parent
    for name in ("views.py", "drafts.py", "uploads.py", "pictures.py", "credits.py"):
        source = (root / name).read_text()
        assert "Question.objects" not in source, name
        assert "visible_to_patient" not in source, name
