"""Issue 15 "pictures you can see": thumbnails and the full-size picture, served through the
access-checked attachment view (never a public URL), and files on a patient's follow-up."""

import contextlib
import io

import pytest
from django.contrib.auth.models import Permission
from django.core.files.base import ContentFile
from django.db import transaction
from django.urls import reverse
from PIL import Image

from consultations import pictures, services
from consultations.models import AccessLog, Attachment, Question, QuestionStatus
from tests.factories import QuestionFactory, UserFactory
from tests.portal.sample_files import HOSTILE_PDFS, jpeg_with_location, pdf_bytes, upload

pytestmark = pytest.mark.django_db


def jpeg_bytes(size=(1200, 900)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (180, 90, 60)).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def png_of(size=(800, 600)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGBA", size, (30, 120, 200, 255)).save(buffer, format="PNG")
    return buffer.getvalue()


def attach(question, data: bytes, content_type: str, name: str = "Paula rash.jpg", reply=None) -> Attachment:
    return Attachment.objects.create(
        question=question,
        reply=reply,
        file=ContentFile(data, name="ignored"),
        original_name=name,
        content_type=content_type,
        size=len(data),
    )


@pytest.fixture
def question(patient, specialty):
    return QuestionFactory(patient=patient, specialty=specialty, is_urgent=False, title="Rash after a new soap")


@pytest.fixture
def photo(question):
    return attach(question, jpeg_bytes(), "image/jpeg")


@pytest.fixture
def bare_staff(db):
    """Staff status and every view permission except the medical record's."""
    user = UserFactory(email="support@example.com", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="consultations", codename__startswith="view_").exclude(
            codename="view_medical_record"
        )
    )
    return user


def thumb_url(attachment):
    return reverse("consultations:attachment_thumbnail", args=[attachment.pk])


def picture_url(attachment):
    return reverse("consultations:attachment_picture", args=[attachment.pk])


def body(response) -> bytes:
    return b"".join(response.streaming_content)


def get_as(client, user, url):
    if user is not None:
        client.force_login(user)
    return client.get(url)


# --- Who may see them -----------------------------------------------------------------------


@pytest.mark.parametrize("url_of", [thumb_url, picture_url], ids=["thumbnail", "picture"])
@pytest.mark.parametrize(
    ("who", "status", "logged"),
    [
        ("patient", 200, False),
        ("doctor", 200, True),
        ("staff", 200, True),
        ("other_patient", 404, False),
        ("other_doctor", 404, False),
        ("unverified_doctor", 404, False),
        ("bare_staff", 404, False),
    ],
)
def test_each_role_gets_the_picture_or_404(client, request, photo, url_of, who, status, logged):
    """Issue 15 (pictures): the thumbnail and the full size follow the download's rule; doctors'
    and staff views are logged like downloads, the patient's own are not."""
    person = request.getfixturevalue(who)
    response = get_as(client, getattr(person, "user", person), url_of(photo))
    assert response.status_code == status
    if status == 200:
        assert body(response).startswith(b"\xff\xd8\xff")
    assert AccessLog.objects.filter(attachment=photo).exists() == logged


@pytest.mark.parametrize("url_of", [thumb_url, picture_url], ids=["thumbnail", "picture"])
def test_anonymous_visitor_is_sent_to_log_in(client, photo, url_of):
    response = client.get(url_of(photo))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_doctor_views_are_logged_with_what_was_seen(client, doctor, photo):
    client.force_login(doctor.user)
    body(client.get(thumb_url(photo)))
    body(client.get(picture_url(photo)))
    actions = sorted(AccessLog.objects.filter(user=doctor.user, attachment=photo).values_list("action", flat=True))
    assert actions == ["view picture", "view thumbnail"]


# --- What is served ----------------------------------------------------------------------------


def test_thumbnail_is_small_inline_private_and_sandboxed(client, patient, photo):
    response = get_as(client, patient, thumb_url(photo))
    data = body(response)
    assert response["Content-Type"] == "image/jpeg"
    assert response["Content-Disposition"].startswith("inline;")
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"] == "default-src 'none'; sandbox"
    assert "no-store" in response["Cache-Control"] and "private" in response["Cache-Control"]
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "JPEG"
        assert max(image.size) == pictures.THUMBNAIL_MAX_SIDE
        assert image.size == (320, 240)


def test_thumbnail_is_made_once_and_kept_in_private_storage(client, patient, photo, monkeypatch):
    storage = photo.file.storage
    name = pictures.thumbnail_name(photo)
    assert not storage.exists(name)
    first = body(get_as(client, patient, thumb_url(photo)))
    assert storage.exists(name)

    def fail(*args, **kwargs):
        raise AssertionError("the thumbnail was made again")

    monkeypatch.setattr("consultations.uploads.thumbnail_bytes", fail)
    assert body(client.get(thumb_url(photo))) == first


def test_png_thumbnail_stays_png(client, patient, question):
    picture = attach(question, png_of(), "image/png", name="scan.png")
    response = get_as(client, patient, thumb_url(picture))
    assert response["Content-Type"] == "image/png"
    with Image.open(io.BytesIO(body(response))) as image:
        assert (image.format, image.size) == ("PNG", (320, 240))


def test_full_size_picture_is_inline_with_the_same_headers(client, patient, doctor, photo):
    response = get_as(client, patient, picture_url(photo))
    assert body(response) == photo.file.open("rb").read()
    assert response["Content-Type"] == "image/jpeg"
    assert response["Content-Disposition"].startswith("inline;")
    assert "Paula" in response["Content-Disposition"]  # the patient's own name, to the patient
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"] == "default-src 'none'; sandbox"
    assert "no-store" in response["Cache-Control"]
    doctors = get_as(client, doctor.user, picture_url(photo))
    assert doctors["Content-Disposition"] == f'inline; filename="{photo.neutral_name}"'


def test_a_pdf_is_never_shown_inline_and_has_no_thumbnail(client, patient, question):
    letter = attach(question, pdf_bytes(), "application/pdf", name="letter.pdf")
    response = get_as(client, patient, picture_url(letter))
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment;")
    assert response["Content-Type"] == "application/octet-stream"
    body(response)
    assert client.get(thumb_url(letter)).status_code == 404


@pytest.mark.parametrize(
    "hostile",
    [
        b"<html><script>alert(document.cookie)</script></html>",
        b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>',
        HOSTILE_PDFS["open-action-javascript"],
    ],
    ids=["html", "svg", "pdf-with-javascript"],
)
def test_a_hostile_file_recorded_as_a_picture_is_never_served_inline(client, patient, doctor, question, hostile):
    """Issue 15 (pictures): only bytes that are the picture their record says are shown inline;
    a file slipped into storage under an image record is a download, and has no thumbnail."""
    impostor = attach(question, hostile, "image/png", name="x.png")
    for user in (patient, doctor.user):
        response = get_as(client, user, picture_url(impostor))
        assert response.status_code == 200
        assert response["Content-Disposition"].startswith("attachment;")
        assert response["Content-Type"] == "application/octet-stream"
        assert response["X-Content-Type-Options"] == "nosniff"
        assert response["Content-Security-Policy"] == "default-src 'none'; sandbox"
        body(response)
        assert client.get(thumb_url(impostor)).status_code == 404


def test_a_broken_picture_has_no_thumbnail_and_no_error_page(client, patient, question):
    broken = attach(question, b"\xff\xd8\xff\xe0" + b"\x00" * 200, "image/jpeg")
    assert get_as(client, patient, thumb_url(broken)).status_code == 404


def test_missing_picture_is_404(client, patient, photo):
    photo.file.delete(save=False)
    assert get_as(client, patient, thumb_url(photo)).status_code == 404
    assert client.get(picture_url(photo)).status_code == 404


# --- The pages ---------------------------------------------------------------------------------


def test_question_page_shows_thumbnails_with_neutral_alt_text(client, patient, question, photo):
    second = attach(question, png_of(), "image/png", name="Paula second.png")
    attach(question, pdf_bytes(), "application/pdf", name="Paula letter.pdf")
    html = get_as(client, patient, reverse("consultations:question_detail", args=[question.pk])).content.decode()
    assert f'src="{thumb_url(photo)}" alt="Photo 1 of 2"' in html
    assert f'src="{thumb_url(second)}" alt="Photo 2 of 2"' in html
    assert f'href="{picture_url(photo)}"' in html
    assert "Paula letter.pdf" in html  # documents stay download links, under the patient's name


def test_workbench_shows_thumbnails_under_neutral_names(client, doctor, question, photo):
    client.force_login(doctor.user)
    url = reverse("doctor_admin:consultations_question_change", args=[question.pk])
    html = client.get(url).content.decode()
    assert f'src="{thumb_url(photo)}" alt="Photo 1 of 1"' in html
    assert photo.neutral_name in html
    assert "Paula" not in html


# --- Files on a follow-up ------------------------------------------------------------------------


@pytest.fixture
def answered(question, doctor):
    services.post_answer(question, doctor, "This looks like contact dermatitis.")
    question.refresh_from_db()
    return question


def follow_up(client, question, data):
    return client.post(reverse("consultations:follow_up", args=[question.pk]), data)


def test_follow_up_with_a_photo_is_stored_on_the_reply_without_its_location(client, patient, doctor, answered):
    """Issue 15 (pictures): a follow-up takes files, checked and stripped as on the ask form,
    and both the patient and the doctor see them in the thread."""
    client.force_login(patient)
    response = follow_up(
        client,
        answered,
        {"body": "It spread to my neck, photo attached.", "attachments": [upload("neck.jpg", jpeg_with_location())]},
    )
    assert response.status_code == 302
    reply = answered.replies.get(body="It spread to my neck, photo attached.")
    attachment = reply.attachments.get()
    assert (attachment.question_id, attachment.content_type, attachment.original_name) == (
        answered.pk,
        "image/jpeg",
        "neck.jpg",
    )
    stored = attachment.file.open("rb").read()
    assert b"SecretCam" not in stored and b"home address" not in stored
    assert Question.objects.get(pk=answered.pk).status == QuestionStatus.OPEN  # the follow-up clock runs

    page = client.get(reverse("consultations:question_detail", args=[answered.pk])).content.decode()
    thread = page.split('id="thread"')[1]
    assert f'src="{thumb_url(attachment)}" alt="Photo 1 of 1"' in thread
    # The question's own files are listed without the reply's.
    assert page.split('id="thread"')[0].count(thumb_url(attachment)) == 0

    client.force_login(doctor.user)
    workbench = client.get(reverse("doctor_admin:consultations_question_change", args=[answered.pk])).content.decode()
    assert f'src="{thumb_url(attachment)}" alt="Photo 1 of 1"' in workbench.split('id="thread-heading"')[1]
    assert attachment.neutral_name in workbench
    assert "neck.jpg" not in workbench


def test_reply_to_an_information_request_takes_files(client, patient, doctor, question):
    services.request_information(question, doctor, "Please send a photo of the rash.")
    client.force_login(patient)
    response = follow_up(client, question, {"body": "Here it is.", "attachments": [upload("rash.pdf", pdf_bytes())]})
    assert response.status_code == 302
    reply = question.replies.get(body="Here it is.")
    assert reply.attachments.get().content_type == "application/pdf"
    assert Question.objects.get(pk=question.pk).status == QuestionStatus.OPEN


@pytest.mark.parametrize(
    ("files", "error"),
    [
        ([upload("notes.txt", b"just text")], "is not a JPEG, PNG or PDF file"),
        ([upload("bad.pdf", HOSTILE_PDFS["open-action-javascript"])], "contains active content"),
        ([upload(f"p{n}.jpg", jpeg_with_location()) for n in range(6)], "at most 5 are allowed"),
        ([upload("big.pdf", pdf_bytes() + b"0" * (11 * 1024 * 1024))], "each file may be at most 10 MB"),
    ],
    ids=["wrong-type", "active-pdf", "too-many", "too-big"],
)
def test_a_refused_file_keeps_the_typed_message_and_sends_nothing(client, patient, answered, files, error):
    client.force_login(patient)
    typed = "My typed message about the rash on my neck."
    response = follow_up(client, answered, {"body": typed, "attachments": files})
    assert response.status_code == 200  # the form again, with its errors (one convention: 200; 429 for rate limits)
    html = response.content.decode()
    assert error in html
    assert typed in html
    assert "please attach your files again" in html
    assert not answered.replies.filter(body=typed).exists()
    assert not Attachment.objects.filter(question=answered).exists()


def test_follow_up_with_files_counts_against_the_limit_before_the_files_are_checked(
    client, patient, answered, settings, monkeypatch
):
    """Checking files costs real work, so a post with files is counted before it."""
    settings.RATELIMIT_ENABLED = True
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "follow_up": (1, 3600)}
    client.force_login(patient)
    assert follow_up(client, answered, {"body": "one", "attachments": [upload("a.txt", b"nope")]}).status_code == 200

    def fail(files):
        if files:
            raise AssertionError("files were checked after the limit was reached")
        return []

    monkeypatch.setattr("consultations.uploads.validate_attachments", fail)
    response = follow_up(client, answered, {"body": "two", "attachments": [upload("b.jpg", jpeg_with_location())]})
    assert response.status_code == 429
    assert "two" in response.content.decode()


# --- A deleted record takes its files along ----------------------------------------------


def test_a_deleted_question_takes_its_pictures_and_their_thumbnails_out_of_storage(
    question, photo, django_capture_on_commit_callbacks
):
    """A patient's photo must not outlive its record: an erasure deletes the question
    (or the account, which cascades to it), and the stored picture and the thumbnail made
    on its first showing go too, once the deletion commits."""
    pictures.thumbnail(photo)
    storage, names = photo.file.storage, [photo.file.name, pictures.thumbnail_name(photo)]
    assert all(storage.exists(name) for name in names)
    with django_capture_on_commit_callbacks(execute=True):
        Question.objects.filter(pk=question.pk).delete()
    assert not [name for name in names if storage.exists(name)]


def test_a_deletion_that_rolls_back_keeps_the_files(question, photo, django_capture_on_commit_callbacks):
    pk, name = photo.pk, photo.file.name
    with django_capture_on_commit_callbacks(execute=True):
        with contextlib.suppress(RuntimeError), transaction.atomic():
            photo.delete()
            raise RuntimeError("the erasure fails half-way")
    assert Attachment.objects.filter(pk=pk).exists()
    assert photo.file.storage.exists(name)
