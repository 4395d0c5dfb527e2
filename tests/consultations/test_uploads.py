"""Attachment checks: the type comes from the content, sizes and counts are capped,
and photos lose their metadata before they are stored."""

import io

import pytest
from django.core.exceptions import ValidationError
from PIL import Image

from consultations import uploads
from tests.portal.sample_files import (
    ELF_BYTES,
    GPS_IFD,
    HTML_BYTES,
    MAKE_TAG,
    SVG_BYTES,
    WINDOWS_EXE_BYTES,
    jpeg_with_location,
    pdf_bytes,
    png_bytes,
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
