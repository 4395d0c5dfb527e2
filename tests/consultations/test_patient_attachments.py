"""The attachment download: the owner gets their file under its own name; doctors and
staff get a neutral name and their download is logged; everyone else gets 404."""

import pytest
from django.core.files.base import ContentFile
from django.urls import reverse

from consultations.models import AccessLog, Attachment
from tests.factories import QuestionFactory
from tests.portal.sample_files import pdf_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def attachment(patient, specialty):
    question = QuestionFactory(patient=patient, specialty=specialty, is_urgent=False)
    return Attachment.objects.create(
        question=question,
        file=ContentFile(pdf_bytes(), name="ignored"),
        original_name="Paula Patient blood test.pdf",
        content_type="application/pdf",
        size=len(pdf_bytes()),
    )


def download(client, user, attachment):
    client.force_login(user)
    return client.get(reverse("consultations:attachment", args=[attachment.pk]))


def body(response) -> bytes:
    return b"".join(response.streaming_content)


def test_owner_downloads_the_file_under_its_original_name(client, patient, attachment):
    response = download(client, patient, attachment)
    assert response.status_code == 200
    assert body(response) == pdf_bytes()
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"].startswith("attachment;")
    assert "Paula" in response["Content-Disposition"]
    assert response["X-Content-Type-Options"] == "nosniff"
    assert not AccessLog.objects.exists()


def test_doctor_of_the_specialty_gets_a_neutral_name_and_is_logged(client, doctor, attachment):
    response = download(client, doctor.user, attachment)
    assert response.status_code == 200
    assert body(response) == pdf_bytes()
    assert response["Content-Disposition"] == f'attachment; filename="{attachment.neutral_name}"'
    assert "Paula" not in response["Content-Disposition"]
    assert response["X-Content-Type-Options"] == "nosniff"
    log = AccessLog.objects.get()
    assert (log.user, log.question, log.attachment, log.action) == (
        doctor.user,
        attachment.question,
        attachment,
        "download",
    )


def test_staff_gets_a_neutral_name_and_is_logged(client, staff, attachment):
    response = download(client, staff, attachment)
    assert response.status_code == 200
    assert attachment.neutral_name in response["Content-Disposition"]
    assert AccessLog.objects.filter(user=staff, action="download").count() == 1


@pytest.mark.parametrize("who", ["other_doctor", "unverified_doctor", "other_patient"])
def test_anyone_else_gets_404_and_nothing_is_logged(client, attachment, request, who):
    person = request.getfixturevalue(who)
    user = getattr(person, "user", person)
    assert download(client, user, attachment).status_code == 404
    assert not AccessLog.objects.exists()


def test_file_missing_from_storage_is_404_not_a_crash(client, patient, attachment):
    attachment.file.delete(save=False)
    assert download(client, patient, attachment).status_code == 404


def test_question_page_links_attachments_through_the_checked_view(client, patient, attachment):
    client.force_login(patient)
    html = client.get(reverse("consultations:question_detail", args=[attachment.question_id])).content.decode()
    assert f'href="{reverse("consultations:attachment", args=[attachment.pk])}"' in html
    assert "Paula Patient blood test.pdf" in html
