"""Checks for patients' attachments: the type comes from the file's bytes, never its name.

Only JPEG, PNG and PDF are accepted. Images must also decode with Pillow, and
they are re-encoded before storing so that metadata (EXIF with the GPS
position, camera serial numbers, comments) never reaches the disk.
"""

import io
import warnings
from collections.abc import Iterable, Sequence

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import UploadedFile
from PIL import Image, ImageOps, UnidentifiedImageError

JPEG = "image/jpeg"
PNG = "image/png"
PDF = "application/pdf"

ALLOWED_TYPES = (JPEG, PNG, PDF)
IMAGE_FORMATS = {JPEG: "JPEG", PNG: "PNG"}

# Big enough for any phone photo or scan, small enough that decoding one
# attachment cannot exhaust the web worker's memory.
MAX_IMAGE_PIXELS = 50_000_000

_SIGNATURES = (
    (b"\xff\xd8\xff", JPEG),
    (b"\x89PNG\r\n\x1a\n", PNG),
    (b"%PDF-", PDF),
)


def human_size(size: int) -> str:
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.1f} MB".replace(".0 MB", " MB")
    if size >= 1024:
        return f"{size // 1024} KB"
    return f"{size} bytes"


def sniff_content_type(head: bytes) -> str | None:
    """The allowed type whose signature the first bytes carry, or None."""
    for signature, content_type in _SIGNATURES:
        if head.startswith(signature):
            return content_type
    return None


def _read_head(upload: UploadedFile, length: int = 16) -> bytes:
    upload.seek(0)
    head = upload.read(length)
    upload.seek(0)
    return head


def _check_image(upload: UploadedFile, content_type: str) -> None:
    """Raise ValidationError unless Pillow decodes the upload as the sniffed format."""
    name = upload.name
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            upload.seek(0)
            with Image.open(upload) as image:
                if image.format != IMAGE_FORMATS[content_type]:
                    raise ValidationError(f"“{name}” is not a valid {IMAGE_FORMATS[content_type]} image.")
                if image.width * image.height > MAX_IMAGE_PIXELS:
                    raise ValidationError(f"“{name}” is too large an image ({image.width} × {image.height} pixels).")
                image.verify()
    except ValidationError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ValidationError(f"“{name}” is too large an image to process.") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise ValidationError(f"“{name}” looks like an image but cannot be read; it may be damaged.") from None
    finally:
        upload.seek(0)


def validate_attachment(upload: UploadedFile) -> str:
    """The content type of one upload (JPEG, PNG or PDF), or ValidationError saying what is wrong."""
    name = upload.name or "The file"
    limit = settings.QUESTION_ATTACHMENT_MAX_BYTES
    if not upload.size:
        raise ValidationError(f"“{name}” is empty (0 bytes).", code="empty")
    if upload.size > limit:
        raise ValidationError(
            f"“{name}” is {human_size(upload.size)}; each file may be at most {human_size(limit)}.",
            code="too_big",
        )
    content_type = sniff_content_type(_read_head(upload))
    if content_type is None:
        raise ValidationError(
            f"“{name}” is not a JPEG, PNG or PDF file (we check the file's content, not its name).",
            code="bad_type",
        )
    if content_type in IMAGE_FORMATS:
        _check_image(upload, content_type)
    return content_type


def validate_attachments(uploads: Sequence[UploadedFile]) -> list[tuple[UploadedFile, str]]:
    """Check every upload; all problems are reported together so the patient fixes them at once."""
    limit = settings.QUESTION_MAX_ATTACHMENTS
    if len(uploads) > limit:
        raise ValidationError(
            f"You attached {len(uploads)} files; at most {limit} are allowed per question.", code="too_many"
        )
    checked, errors = [], []
    for upload in uploads:
        try:
            checked.append((upload, validate_attachment(upload)))
        except ValidationError as error:
            errors.extend(error.messages)
    if errors:
        raise ValidationError(errors)
    return checked


def strip_metadata(upload: UploadedFile, content_type: str) -> UploadedFile | ContentFile:
    """The file to store: images re-encoded without metadata, PDFs as they are.

    The photo's orientation tag is applied to the pixels first, because it goes
    with the rest of the EXIF data and the picture would otherwise turn sideways.
    """
    if content_type not in IMAGE_FORMATS:
        upload.seek(0)
        return upload
    upload.seek(0)
    with Image.open(upload) as original:
        original.load()
        image = ImageOps.exif_transpose(original)
    icc_profile = image.info.get("icc_profile")
    image.info = {}
    options = {"icc_profile": icc_profile} if icc_profile else {}
    output = io.BytesIO()
    if content_type == JPEG:
        if image.mode not in ("RGB", "L", "CMYK"):
            image = image.convert("RGB")
        image.save(output, format="JPEG", quality=90, **options)
    else:
        image.save(output, format="PNG", **options)
    upload.seek(0)
    return ContentFile(output.getvalue(), name=upload.name)


def prepare_attachments(uploads: Iterable[UploadedFile]) -> list[tuple[UploadedFile | ContentFile, str]]:
    """Validate, then strip metadata: the `(file, content_type)` pairs submit_question stores."""
    return [
        (strip_metadata(upload, content_type), content_type)
        for upload, content_type in validate_attachments(list(uploads))
    ]
