"""Attachment checks: the type comes from the content, sizes and counts are capped,
and photos lose their metadata before they are stored; stored files are private,
randomly named, and come back only as downloads of their real type."""

import io
import os
import stat
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from PIL import Image

from consultations import uploads
from consultations.models import Attachment, Question
from consultations.views import download_name
from tests.portal.sample_files import (
    BENIGN_PDFS,
    ELF_BYTES,
    GPS_IFD,
    HOSTILE_PDFS,
    HTML_BYTES,
    MAKE_TAG,
    SVG_BYTES,
    WINDOWS_EXE_BYTES,
    jpeg_with_location,
    mpo_bytes,
    pdf_bytes,
    png_bytes,
    png_header_only,
    png_upload,
    upload,
)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (png_bytes(), "image/png"),
        (jpeg_with_location(), "image/jpeg"),
        (pdf_bytes(), "application/pdf"),
        (ELF_BYTES, None),
        (WINDOWS_EXE_BYTES, None),
        (HTML_BYTES, None),
        (SVG_BYTES, None),
        (b"", None),
    ],
)
def test_content_type_is_read_from_the_first_bytes(content, expected):
    assert uploads.sniff_content_type(content[:16]) == expected


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("photo.png", png_bytes(), "image/png"),
        ("photo.jpg", jpeg_with_location(), "image/jpeg"),
        ("letter.pdf", pdf_bytes(), "application/pdf"),
        # A misleading name does not matter when the content is fine.
        ("scan.pdf", png_bytes(), "image/png"),
    ],
)
def test_allowed_files_pass_with_the_type_of_their_content(name, content, expected):
    assert uploads.validate_attachment(upload(name, content, "text/plain")) == expected


@pytest.mark.parametrize(
    "content",
    [ELF_BYTES, WINDOWS_EXE_BYTES, HTML_BYTES, SVG_BYTES],
    ids=["elf", "windows-exe", "html", "svg"],
)
def test_impostor_renamed_png_is_refused(content):
    with pytest.raises(ValidationError) as error:
        uploads.validate_attachment(upload("holiday.png", content, "image/png"))
    assert "“holiday.png” is not a JPEG, PNG or PDF file" in error.value.messages[0]


def test_png_signature_followed_by_garbage_is_refused():
    content = b"\x89PNG\r\n\x1a\n" + b"\x00garbage" * 50
    with pytest.raises(ValidationError) as error:
        uploads.validate_attachment(upload("broken.png", content))
    assert "cannot be read" in error.value.messages[0]


def test_jpeg_bytes_named_png_pass_as_jpeg():
    assert uploads.validate_attachment(upload("photo.png", jpeg_with_location())) == "image/jpeg"


def test_zero_byte_file_is_refused():
    with pytest.raises(ValidationError) as error:
        uploads.validate_attachment(upload("empty.pdf", b""))
    assert error.value.messages == ["“empty.pdf” is empty (0 bytes)."]


def test_file_over_the_size_limit_is_refused(settings):
    settings.QUESTION_ATTACHMENT_MAX_BYTES = 10 * 1024 * 1024
    content = pdf_bytes() + b"0" * (11 * 1024 * 1024)
    with pytest.raises(ValidationError) as error:
        uploads.validate_attachment(upload("scan.pdf", content))
    assert "each file may be at most 10 MB" in error.value.messages[0]


def test_file_exactly_at_the_limit_passes(settings):
    content = pdf_bytes()
    settings.QUESTION_ATTACHMENT_MAX_BYTES = len(content)
    assert uploads.validate_attachment(upload("scan.pdf", content)) == "application/pdf"


def test_image_with_too_many_pixels_is_refused(monkeypatch):
    monkeypatch.setattr(uploads, "MAX_IMAGE_PIXELS", 100)
    with pytest.raises(ValidationError) as error:
        uploads.validate_attachment(upload("huge.png", png_bytes(size=(20, 20))))
    assert "too large an image" in error.value.messages[0]


def test_more_files_than_allowed_are_refused_as_a_whole(settings):
    settings.QUESTION_MAX_ATTACHMENTS = 5
    with pytest.raises(ValidationError) as error:
        uploads.validate_attachments([png_upload(f"p{n}.png") for n in range(6)])
    assert error.value.messages == ["You attached 6 files; at most 5 are allowed per question."]


def test_every_bad_file_is_reported_at_once():
    files = [png_upload("good.png"), upload("virus.png", ELF_BYTES), upload("empty.png", b"")]
    with pytest.raises(ValidationError) as error:
        uploads.validate_attachments(files)
    assert len(error.value.messages) == 2
    assert "virus.png" in error.value.messages[0]
    assert "empty.png" in error.value.messages[1]


def test_location_camera_and_comment_are_removed_from_a_jpeg():
    original = upload("me.jpg", jpeg_with_location())
    stored = uploads.strip_metadata(original, "image/jpeg")
    data = stored.read()
    assert b"SecretCam" not in data
    assert b"home address" not in data
    with Image.open(io.BytesIO(data)) as image:
        exif = image.getexif()
        assert not exif.get_ifd(GPS_IFD)
        assert MAKE_TAG not in exif
        assert image.format == "JPEG"
    assert stored.name == "me.jpg"


def test_photo_orientation_is_applied_before_the_tag_is_dropped():
    # Orientation 6 = "rotate 90° clockwise to display": a 40×20 sensor image is shown 20×40.
    stored = uploads.strip_metadata(upload("me.jpg", jpeg_with_location(size=(40, 20), orientation=6)), "image/jpeg")
    with Image.open(io.BytesIO(stored.read())) as image:
        assert image.size == (20, 40)


def test_png_text_chunks_are_removed():
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "Paula Patient, 12 Hidden Street")
    buffer = io.BytesIO()
    Image.new("RGBA", (10, 10), (0, 0, 0, 0)).save(buffer, format="PNG", pnginfo=info)
    stored = uploads.strip_metadata(upload("scan.png", buffer.getvalue()), "image/png")
    data = stored.read()
    assert b"Hidden Street" not in data
    with Image.open(io.BytesIO(data)) as image:
        assert image.mode == "RGBA"
        assert image.format == "PNG"


def test_pdf_is_stored_as_it_came():
    original = upload("letter.pdf", pdf_bytes())
    assert uploads.strip_metadata(original, "application/pdf").read() == pdf_bytes()


def test_prepare_attachments_returns_clean_files_with_their_types():
    prepared = uploads.prepare_attachments([upload("me.jpg", jpeg_with_location()), upload("a.pdf", pdf_bytes())])
    assert [content_type for _, content_type in prepared] == ["image/jpeg", "application/pdf"]
    assert b"SecretCam" not in prepared[0][0].read()


# --- Through the ask form: what is stored, where, and how it comes back ----------------


@pytest.fixture
def ask_data(specialty):
    return {
        "specialty": str(specialty.pk),
        "title": "Mole that changed colour",
        "description": "A mole on my back got darker over two months.",
        "age": "52",
        "sex": "female",
        "consent": "on",
    }


def ask_with(client, patient, ask_data, *files):
    client.force_login(patient)
    return client.post(reverse("consultations:ask"), {**ask_data, "attachments": list(files)})


def download(client, user, attachment):
    client.force_login(user)
    response = client.get(reverse("consultations:attachment", args=[attachment.pk]))
    return response, b"".join(response.streaming_content)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("name", "content"),
    [("page.png", HTML_BYTES), ("drawing.png", SVG_BYTES), ("empty.png", b"")],
    ids=["html-as-png", "svg-as-png", "zero-byte"],
)
def test_refused_file_leaves_nothing_on_disk(client, patient, ask_data, settings, name, content):
    response = ask_with(client, patient, ask_data, upload(name, content, "image/png"))
    assert response.status_code == 200
    assert f"“{name}”" in response.content.decode()
    assert not Question.objects.exists()
    private = Path(settings.PRIVATE_MEDIA_ROOT)
    assert not private.exists() or not any(path.is_file() for path in private.rglob("*"))


@pytest.mark.django_db
def test_oversized_file_is_refused_with_the_limit_named(client, patient, ask_data, settings):
    settings.QUESTION_ATTACHMENT_MAX_BYTES = 1024 * 1024
    response = ask_with(client, patient, ask_data, upload("scan.pdf", pdf_bytes() + b"0" * (2 * 1024 * 1024)))
    assert "“scan.pdf” is 2 MB; each file may be at most 1 MB." in response.content.decode()
    assert not Attachment.objects.exists()


@pytest.mark.django_db
def test_pdf_with_a_photo_extension_is_accepted_as_the_pdf_it_is(client, patient, doctor, ask_data):
    # The content decides the type; the name is only a label. The patient gets it back
    # as "….pdf" so their computer opens it with the right program.
    assert ask_with(client, patient, ask_data, upload("blood test.jpg", pdf_bytes(), "image/jpeg")).status_code == 302
    attachment = Attachment.objects.get()
    assert attachment.content_type == "application/pdf"
    assert attachment.original_name == "blood test.jpg"

    response, body = download(client, patient, attachment)
    assert body == pdf_bytes()
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == 'attachment; filename="blood test.pdf"'

    response, _ = download(client, doctor.user, attachment)
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"].endswith('.pdf"')


@pytest.mark.django_db
def test_files_are_stored_privately_under_random_names(client, patient, ask_data, settings):
    ask_with(client, patient, ask_data, upload("Paula rash.png", png_bytes()), upload("letter.pdf", pdf_bytes()))
    private = Path(settings.PRIVATE_MEDIA_ROOT).resolve()
    public = Path(settings.MEDIA_ROOT).resolve()
    for attachment in Attachment.objects.all():
        stored = Path(attachment.file.path).resolve()
        assert stored.is_file()
        assert private in stored.parents
        assert public not in stored.parents
        assert "Paula" not in attachment.file.name and "letter" not in attachment.file.name
        assert len(stored.name) == 32 and int(stored.name, 16) >= 0  # a random hex name, no extension
        with pytest.raises(NotImplementedError):
            attachment.file.url  # no public address exists  # noqa: B018
    names = {Path(a.file.name).name for a in Attachment.objects.all()}
    assert len(names) == 2


@pytest.mark.django_db
def test_stored_photo_has_no_gps_position(client, patient, ask_data):
    photo = jpeg_with_location()
    with Image.open(io.BytesIO(photo)) as original:
        assert original.getexif().get_ifd(GPS_IFD)  # the phone's photo does carry a position
    ask_with(client, patient, ask_data, upload("garden.jpg", photo, "image/jpeg"))
    attachment = Attachment.objects.get()
    with attachment.file.open("rb") as handle:
        stored = handle.read()
    with Image.open(io.BytesIO(stored)) as image:
        exif = image.getexif()
        assert not exif.get_ifd(GPS_IFD)
        assert MAKE_TAG not in exif
    assert b"SecretCam" not in stored
    assert attachment.size == len(stored)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("name", "content", "content_type"),
    [("rash.png", png_bytes(), "image/png"), ("arm.jpg", jpeg_with_location(), "image/jpeg")],
)
def test_download_is_an_attachment_of_the_sniffed_type_that_browsers_may_not_sniff(
    client, patient, ask_data, name, content, content_type
):
    ask_with(client, patient, ask_data, upload(name, content, "application/octet-stream"))
    response, body = download(client, patient, Attachment.objects.get())
    assert response.status_code == 200
    assert response["Content-Type"] == content_type
    assert response["Content-Disposition"] == f'attachment; filename="{name}"'
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in response["Content-Security-Policy"]
    assert "no-store" in response["Cache-Control"] or "private" in response["Cache-Control"]
    assert body


@pytest.mark.parametrize(
    ("original", "extension", "expected"),
    [
        ("scan.pdf", "pdf", "scan.pdf"),
        ("scan.PDF", "pdf", "scan.PDF"),
        ("photo.jpeg", "jpg", "photo.jpeg"),
        ("scan.jpg", "pdf", "scan.pdf"),
        ("picture.png", "jpg", "picture.jpg"),
        ("no extension", "png", "no extension.png"),
        (".hidden", "pdf", ".hidden.pdf"),
    ],
)
def test_download_name_ends_as_the_content_really_is(original, extension, expected):
    assert download_name(original, extension) == expected


# --- Permissions on disk ------------------------------------------------------------------


@pytest.fixture
def usual_umask():
    """The common 022 umask, under which Django's defaults give 0644 files in 0755 folders."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


@pytest.mark.django_db
def test_stored_files_and_their_folders_are_private_to_the_portal_account(
    client, patient, ask_data, settings, usual_umask
):
    """Issue 11 item 16: attachments are 0600 in 0700 folders, not world-readable."""
    # Over this size Django spools an upload to a temporary file and moves it into
    # place, a second way of writing that must end with the same modes.
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 1024
    big_pdf = pdf_bytes() + b"%" + b"0" * 4096 + b"\n"
    ask_with(client, patient, ask_data, upload("rash.png", png_bytes()), upload("letter.pdf", big_pdf))
    private = Path(settings.PRIVATE_MEDIA_ROOT).resolve()
    attachments = list(Attachment.objects.all())
    assert len(attachments) == 2
    for attachment in attachments:
        stored = Path(attachment.file.path).resolve()
        assert stat.S_IMODE(stored.stat().st_mode) == 0o600, stored
        folder = stored.parent
        while folder != private.parent:
            assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
            folder = folder.parent


# --- Bounded decoding (Issue 11 item 13) -------------------------------------------------


def test_png_bomb_is_refused_from_its_header_before_any_pixel_is_decoded():
    """Issue 11 item 13: a tiny PNG claiming 30 megapixels (under the old 50 MP cap) is refused, limit named."""
    bomb = png_header_only(6000, 5000)
    assert len(bomb) < 1024
    with pytest.raises(ValidationError) as error:
        uploads.validate_attachment(upload("scan.png", bomb))
    message = error.value.messages[0]
    assert "“scan.png” is too large an image (6000 × 5000 pixels, 30 megapixels)" in message
    assert "at most 25 megapixels" in message


def test_nothing_bigger_than_phones_full_resolution_modes_is_accepted():
    """Issue 11 item 13: the caps are what phone cameras produce, not more."""
    assert uploads.MAX_DECODED_PIXELS >= 5712 * 4284  # a 24 MP iPhone photo is decoded at full size
    assert uploads.MAX_DECODED_PIXELS <= 25_000_000
    assert uploads.MAX_IMAGE_PIXELS >= 8160 * 6120  # a 50 MP phone mode is accepted (decoded at half scale)
    assert uploads.MAX_IMAGE_PIXELS <= 50_000_000


def test_png_over_the_decoding_budget_is_refused(monkeypatch):
    """Issue 11 item 13: PNG has no cheap reduced decoding, so one over the budget is refused."""
    monkeypatch.setattr(uploads, "MAX_DECODED_PIXELS", 10_000)
    with pytest.raises(ValidationError) as error:
        uploads.validate_attachment(upload("screen.png", png_bytes(size=(200, 100))))
    assert "too large an image (200 × 100 pixels" in error.value.messages[0]


def test_jpeg_over_the_decoding_budget_is_decoded_and_stored_at_reduced_scale(monkeypatch):
    """Issue 11 item 13: libjpeg decodes a big photo at 1/2 scale, so it costs a quarter of the memory."""
    monkeypatch.setattr(uploads, "MAX_DECODED_PIXELS", 5_000)
    photo = jpeg_with_location(size=(200, 100))
    decoded_sizes = []
    original_load = Image.Image.load

    def recording_load(image):
        decoded_sizes.append(image.size)
        return original_load(image)

    monkeypatch.setattr(Image.Image, "load", recording_load)
    [(stored, content_type)] = uploads.prepare_attachments([upload("mole.jpg", photo)])
    assert content_type == "image/jpeg"
    with Image.open(io.BytesIO(stored.read())) as image:
        assert image.size == (100, 50)
    assert (200, 100) not in decoded_sizes


def test_jpeg_with_hundreds_of_scans_is_refused_before_decoding():
    """Issue 11 item 13: each progressive scan decodes the picture again; thousands make a tiny file take minutes."""
    crafted = jpeg_with_location() + b"\xff\xda" * (uploads.MAX_JPEG_SCANS + 1)
    with pytest.raises(ValidationError) as error:
        uploads.validate_attachment(upload("scans.jpg", crafted))
    assert "“scans.jpg” is built in a way that is too costly to read." in error.value.messages


def test_truncated_image_is_refused_with_a_message_not_a_server_error(client, patient, ask_data):
    """Issue 11 item 13: a picture that fails only while decoding is a field error, not a 500."""
    # Its chunks and checksums are sound; only decoding finds the pixel data missing.
    truncated = png_header_only(400, 300)
    response = ask_with(client, patient, ask_data, upload("cut.png", truncated, "image/png"))
    assert response.status_code == 200
    assert "“cut.png” looks like an image but cannot be read; it may be damaged." in response.content.decode()
    assert not Question.objects.exists()


# --- Multi-picture JPEGs from phones (Issue 11 item 15) ----------------------------------


def test_multi_picture_jpeg_is_accepted_as_jpeg():
    """Issue 11 item 15: phones' MPO photos were refused as "not a valid JPEG"."""
    photo = mpo_bytes()
    with Image.open(io.BytesIO(photo)) as image:
        assert image.format == "MPO" and image.n_frames == 2
    assert uploads.validate_attachment(upload("IMG_0001.JPG", photo, "image/jpeg")) == "image/jpeg"


@pytest.mark.django_db
def test_multi_picture_jpeg_is_stored_as_its_first_picture_without_location(client, patient, ask_data):
    """Issue 11 item 15: the first picture is kept, as a plain JPEG, with EXIF and GPS removed."""
    response = ask_with(client, patient, ask_data, upload("IMG_0001.JPG", mpo_bytes(size=(40, 30)), "image/jpeg"))
    assert response.status_code == 302
    attachment = Attachment.objects.get()
    assert attachment.content_type == "image/jpeg"
    with attachment.file.open("rb") as handle:
        stored = handle.read()
    assert b"SecretCam" not in stored
    with Image.open(io.BytesIO(stored)) as image:
        assert image.format == "JPEG"
        assert getattr(image, "n_frames", 1) == 1
        assert image.size == (40, 30)
        red, green, blue = image.getpixel((20, 15))
        assert red > 150 and blue < 100  # the first (red) picture, not the second (blue)
        assert not image.getexif().get_ifd(GPS_IFD)


# --- PDFs with active content (Issue 11 item 14) -----------------------------------------


@pytest.mark.parametrize("name", sorted(HOSTILE_PDFS))
def test_pdf_with_active_content_is_refused_with_a_clear_message(name):
    """Issue 11 item 14: scripts, automatic actions and embedded files were stored byte for byte."""
    with pytest.raises(ValidationError) as error:
        uploads.validate_attachment(upload("results.pdf", HOSTILE_PDFS[name]))
    assert error.value.messages == [
        "“results.pdf” contains active content (scripts, automatic actions or embedded files), which we do not "
        "accept for your safety and the doctor's. Please open it and save or print it as a new PDF "
        "(“Print” → “Save as PDF”), or attach photos of its pages."
    ]


def _written_by_pypdf(change) -> bytes:
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(200, 200)
    change(writer)
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def test_pdf_libraries_javascript_and_attachments_are_refused():
    """Issue 11 item 14: the same refusal for active content written the way PDF libraries write it."""
    from pypdf.actions import JavaScript

    scripted = _written_by_pypdf(lambda writer: writer.add_open_action(JavaScript("app.alert(1)")))
    attached = _written_by_pypdf(lambda writer: writer.add_attachment("run.bat", b"format c:"))
    for content in (scripted, attached):
        with pytest.raises(ValidationError, match="contains active content"):
            uploads.validate_attachment(upload("letter.pdf", content))


@pytest.mark.parametrize("name", sorted(BENIGN_PDFS))
def test_pdf_with_links_or_an_opening_view_is_accepted(name):
    assert uploads.validate_attachment(upload("report.pdf", BENIGN_PDFS[name])) == "application/pdf"


def test_password_protected_pdf_is_refused_and_restricted_only_pdf_is_accepted():
    locked = _written_by_pypdf(lambda writer: writer.encrypt("secret", algorithm="AES-128"))
    with pytest.raises(ValidationError) as error:
        uploads.validate_attachment(upload("bank.pdf", locked))
    assert "“bank.pdf” is protected with a password" in error.value.messages[0]
    # No password to open, only "do not print/edit" restrictions, as many lab portals send.
    restricted = _written_by_pypdf(lambda writer: writer.encrypt("", owner_password="lab", algorithm="AES-128"))
    assert uploads.validate_attachment(upload("lab.pdf", restricted)) == "application/pdf"


def test_pdf_signature_followed_by_garbage_is_refused():
    with pytest.raises(ValidationError) as error:
        uploads.validate_attachment(upload("scan.pdf", b"%PDF-1.7\n" + b"\x00garbage" * 50))
    assert "“scan.pdf” looks like a PDF but cannot be read" in error.value.messages[0]


@pytest.mark.django_db
def test_hostile_pdf_is_refused_next_to_the_field_and_nothing_is_stored(client, patient, ask_data, settings):
    """Issue 11 item 14: the patient sees why, keeps what they typed, and nothing reaches the disk."""
    hostile = HOSTILE_PDFS["open-action-javascript"]
    response = ask_with(client, patient, ask_data, upload("results.pdf", hostile, "application/pdf"))
    assert response.status_code == 200
    page = response.content.decode()
    assert "“results.pdf” contains active content" in page
    assert ask_data["description"] in page
    assert not Question.objects.exists()
    private = Path(settings.PRIVATE_MEDIA_ROOT)
    assert not private.exists() or not any(path.is_file() for path in private.rglob("*"))
