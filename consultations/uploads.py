"""Checks for patients' attachments: the type comes from the file's bytes, never its name.

Only JPEG, PNG and PDF are accepted. Images must also decode with Pillow, and
they are re-encoded before storing so that metadata (EXIF with the GPS
position, camera serial numbers, comments) never reaches the disk. Decoding
is bounded: the size is read from the header and checked before any pixel is
decoded, and a JPEG larger than the decoding budget is decoded at a reduced
scale by libjpeg itself. PDFs are stored as they came, but only after pypdf
found no active content in them (scripts, automatic actions, embedded files).
"""

import contextlib
import io
import warnings
from collections.abc import Iterable, Sequence

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import UploadedFile
from PIL import Image, ImageOps

JPEG = "image/jpeg"
PNG = "image/png"
PDF = "application/pdf"

ALLOWED_TYPES = (JPEG, PNG, PDF)
IMAGE_FORMATS = {JPEG: "JPEG", PNG: "PNG"}
# What Pillow may call each type: phones save "multi-picture" JPEGs (MPO: the
# photo, then depth maps or previews); the first picture is an ordinary JPEG.
PILLOW_FORMATS = {JPEG: ("JPEG", "MPO"), PNG: ("PNG",)}

# The largest picture accepted at all, read from the header before decoding:
# phones' full-resolution modes (48 and 50 megapixels) fit, nothing bigger.
MAX_IMAGE_PIXELS = 50_000_000
# The most pixels ever decoded: a phone's default photo (12 MP, 24 MP on recent
# iPhones) fits. Decoded pixels take 4 bytes each, so one image costs at most
# about 100 MB, twice that while a rotated photo is turned. A larger JPEG is
# decoded by libjpeg at 1/2 (or 1/4) scale, so a 48 MP photo is stored as 12 MP;
# a PNG (no such shortcut) larger than this is refused.
MAX_DECODED_PIXELS = 25_000_000
# A progressive JPEG decodes once per scan; cameras write about ten. Thousands
# of tiny scans would make a small file take minutes to decode.
MAX_JPEG_SCANS = 100
JPEG_START_OF_SCAN = b"\xff\xda"
# PNGs are re-compressed quickly: level 1 is several times faster than the
# default 6 on large pictures and the file grows only a little.
PNG_COMPRESS_LEVEL = 1

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


def _read_all(upload: UploadedFile) -> bytes:
    upload.seek(0)
    data = upload.read()
    upload.seek(0)
    return data


# --- Images ------------------------------------------------------------------------------


def _megapixels(pixels: int) -> str:
    return f"{pixels / 1_000_000:.3g} megapixels"


def _too_large(name: str, image: Image.Image, limit: int, advice: str) -> ValidationError:
    width, height = image.size
    return ValidationError(
        f"“{name}” is too large an image ({width} × {height} pixels, {_megapixels(width * height)}); "
        f"we accept at most {_megapixels(limit)}. {advice}",
        code="image_too_large",
    )


def _open_bounded(upload: UploadedFile, content_type: str) -> Image.Image:
    """Open an image (header only) and plan a decoding that stays within the budget.

    Raises ValidationError when the format, the size or the number of scans is
    out of bounds; nothing has been decoded by then.
    """
    name = upload.name
    if content_type == JPEG and _read_all(upload).count(JPEG_START_OF_SCAN) > MAX_JPEG_SCANS:
        raise ValidationError(f"“{name}” is built in a way that is too costly to read.", code="bad_image")
    # Not closed on refusal: the image reads the upload, which Django closes.
    image = Image.open(upload)
    if image.format not in PILLOW_FORMATS[content_type]:
        raise ValidationError(f"“{name}” is not a valid {IMAGE_FORMATS[content_type]} image.", code="bad_image")
    pixels = image.width * image.height
    if pixels > MAX_IMAGE_PIXELS:
        raise _too_large(name, image, MAX_IMAGE_PIXELS, "Please send a smaller copy.")
    if content_type == JPEG and pixels > MAX_DECODED_PIXELS:
        _plan_reduced_decoding(image)
    if image.width * image.height > MAX_DECODED_PIXELS:
        raise _too_large(name, image, MAX_DECODED_PIXELS, "Please send a smaller copy or a JPEG photo.")
    return image


def _plan_reduced_decoding(image: Image.Image) -> None:
    """Ask libjpeg to decode at the smallest of 1/2, 1/4, 1/8 scale that fits the budget."""
    for scale in (2, 4, 8):
        if (image.width // scale) * (image.height // scale) <= MAX_DECODED_PIXELS:
            image.draft(image.mode, (image.width // scale, image.height // scale))
            return


@contextlib.contextmanager
def _image_errors(name: str):
    """Pillow's exceptions on a hostile or broken image, as the message the patient sees."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    except ValidationError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ValidationError(f"“{name}” is too large an image to process.", code="image_too_large") from None
    except (OSError, SyntaxError, ValueError, EOFError):  # UnidentifiedImageError is an OSError
        raise ValidationError(
            f"“{name}” looks like an image but cannot be read; it may be damaged.", code="bad_image"
        ) from None


def _check_image(upload: UploadedFile, content_type: str) -> None:
    """Raise ValidationError unless the upload is an image of the sniffed format within the bounds."""
    try:
        with _image_errors(upload.name), _open_bounded(upload, content_type) as image:
            image.verify()
    finally:
        upload.seek(0)


def _reencoded(upload: UploadedFile, content_type: str) -> bytes:
    """The picture (the first one of a multi-picture JPEG), turned upright, without metadata.

    The photo's orientation tag is applied to the pixels first, because it goes
    with the rest of the EXIF data and the picture would otherwise turn sideways.
    """
    with _image_errors(upload.name), _open_bounded(upload, content_type) as image:
        image.load()
        # In place: no second copy of the pixels when the photo is already upright.
        ImageOps.exif_transpose(image, in_place=True)
        icc_profile = image.info.get("icc_profile")
        image.info = {}
        options = {"icc_profile": icc_profile} if icc_profile else {}
        output = io.BytesIO()
        if content_type == JPEG:
            picture = image if image.mode in ("RGB", "L", "CMYK") else image.convert("RGB")
            picture.save(output, format="JPEG", quality=90, **options)
        else:
            image.save(output, format="PNG", compress_level=PNG_COMPRESS_LEVEL, **options)
    return output.getvalue()


def thumbnail_bytes(source, content_type: str, max_side: int) -> bytes:
    """A small copy of a stored picture, at most `max_side` pixels a side, re-encoded by us.

    `source` is a readable file (a stored attachment). Decoding is bounded as for an
    upload, and a JPEG is decoded by libjpeg at a reduced scale (Pillow's `draft`,
    used by `thumbnail`), so a 12-megapixel photo costs a few milliseconds.
    Raises ValidationError when the file is not a readable picture of its type.
    """
    with _image_errors(getattr(source, "name", None) or "The file"), _open_bounded(source, content_type) as image:
        image.thumbnail((max_side, max_side), reducing_gap=2.0)
        ImageOps.exif_transpose(image, in_place=True)
        image.info = {}
        output = io.BytesIO()
        if content_type == JPEG:
            picture = image if image.mode in ("RGB", "L") else image.convert("RGB")
            picture.save(output, format="JPEG", quality=80)
        else:
            picture = image if image.mode in ("RGB", "RGBA", "L", "LA", "P") else image.convert("RGBA")
            picture.save(output, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return output.getvalue()


def has_signature_of(head: bytes, content_type: str) -> bool:
    """True when the first bytes of a stored file are those of its recorded type."""
    return sniff_content_type(head) == content_type


# --- PDFs --------------------------------------------------------------------------------

# Keys that make a PDF act on its own: scripts, actions run on open or on an
# event, embedded files, forms that run XFA, multimedia players.
ACTIVE_KEYS = frozenset(
    {"/JS", "/JavaScript", "/AA", "/EmbeddedFiles", "/EmbeddedFile", "/EF", "/XFA", "/RichMediaContent"}
)
# Action types (/S), object types (/Type) and annotation types (/Subtype) that do the same.
ACTIVE_NAMES = frozenset(
    {
        "/JavaScript",
        "/Launch",
        "/SubmitForm",
        "/ImportData",
        "/GoToR",
        "/GoToE",
        "/RichMedia",
        "/RichMediaExecute",
        "/Rendition",
        "/Movie",
        "/Sound",
        "/Screen",
        "/3D",
        "/EmbeddedFile",
        "/FileAttachment",
    }
)
# /OpenAction may only show a page (a destination array, or a /GoTo action).
HARMLESS_OPEN_ACTIONS = frozenset({"/GoTo"})
# More objects than a patient's letter or scan ever has: refused rather than walked for long.
MAX_PDF_OBJECTS = 200_000


class ActivePdfContent(Exception):
    """The PDF holds something that acts on its own when opened."""


def _pdf_values(value):
    """The values inside a PDF dictionary or array (not following references)."""
    from pypdf.generic import ArrayObject, DictionaryObject

    if isinstance(value, DictionaryObject):
        return value.items()
    if isinstance(value, ArrayObject):
        return enumerate(value)
    return ()


def _check_pdf_dictionary(dictionary) -> None:
    for key in dictionary:
        if key in ACTIVE_KEYS:
            raise ActivePdfContent(key)
    for key in ("/S", "/Type", "/Subtype"):
        kind = _resolved(dictionary.get(key))
        if isinstance(kind, str) and kind in ACTIVE_NAMES:
            raise ActivePdfContent(kind)
    action = _resolved(dictionary.get("/OpenAction"))
    if hasattr(action, "keys") and _resolved(action.get("/S")) not in HARMLESS_OPEN_ACTIONS:
        raise ActivePdfContent("/OpenAction")


def _resolved(value):
    return value.get_object() if hasattr(value, "get_object") else value


def find_active_pdf_content(reader) -> str | None:
    """The first sign of active content in a parsed PDF (a PDF name such as "/JavaScript"), or None.

    Every object is checked: those reachable from the trailer (what a viewer
    follows) and every other object in the cross-reference table, so that
    content a viewer might find by repairing the file is not missed.
    """
    from pypdf.generic import DictionaryObject, IndirectObject

    seen: set[tuple[int, int]] = set()
    stack = [reader.trailer]
    for generation, numbers in reader.xref.items():
        stack.extend(IndirectObject(number, generation, reader) for number in numbers)
    stack.extend(IndirectObject(number, 0, reader) for number in reader.xref_objStm)
    try:
        while stack:
            value = stack.pop()
            if isinstance(value, IndirectObject):
                reference = (value.idnum, value.generation)
                if reference in seen:
                    continue
                seen.add(reference)
                if len(seen) > MAX_PDF_OBJECTS:
                    raise ActivePdfContent("too many objects")
                value = value.get_object()
            if isinstance(value, DictionaryObject):
                _check_pdf_dictionary(value)
            stack.extend(child for _, child in _pdf_values(value))
    except ActivePdfContent as found:
        return str(found)
    return None


def _check_pdf(upload: UploadedFile) -> None:
    """Raise ValidationError unless pypdf reads the PDF and finds no active content in it."""
    from pypdf import PdfReader

    name = upload.name
    try:
        reader = PdfReader(io.BytesIO(_read_all(upload)), strict=False)
        if reader.is_encrypted and not reader.decrypt(""):
            raise ValidationError(
                f"“{name}” is protected with a password. Please attach a copy without a password.",
                code="pdf_encrypted",
            )
        found = find_active_pdf_content(reader)
    except ValidationError:
        raise
    except Exception:  # noqa: BLE001 - a hostile file may break the parser in any way; it is refused, not a 500
        raise ValidationError(
            f"“{name}” looks like a PDF but cannot be read; it may be damaged or password-protected.",
            code="bad_pdf",
        ) from None
    finally:
        upload.seek(0)
    if found is not None:
        raise ValidationError(
            f"“{name}” contains active content (scripts, automatic actions or embedded files), which we do not "
            "accept for your safety and the doctor's. Please open it and save or print it as a new PDF "
            "(“Print” → “Save as PDF”), or attach photos of its pages.",
            code="pdf_active_content",
        )


# --- All attachments ---------------------------------------------------------------------


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
    else:
        _check_pdf(upload)
    return content_type


def _check_count(uploads: Sequence[UploadedFile]) -> None:
    limit = settings.QUESTION_MAX_ATTACHMENTS
    if len(uploads) > limit:
        raise ValidationError(
            f"You attached {len(uploads)} files; at most {limit} are allowed per question.", code="too_many"
        )


def _all_or_errors(uploads, check) -> list:
    """`check` applied to every upload; all problems are reported together so the patient fixes them at once."""
    results, errors = [], []
    for upload in uploads:
        try:
            results.append(check(upload))
        except ValidationError as error:
            errors.extend(error.messages)
    if errors:
        raise ValidationError(errors)
    return results


def validate_attachments(uploads: Sequence[UploadedFile]) -> list[tuple[UploadedFile, str]]:
    """Check every upload: `(upload, content_type)` pairs, or one ValidationError listing every problem."""
    _check_count(uploads)
    return _all_or_errors(uploads, lambda upload: (upload, validate_attachment(upload)))


def strip_metadata(upload: UploadedFile, content_type: str) -> UploadedFile | ContentFile:
    """The file to store: images re-encoded without metadata, PDFs (already checked) as they are."""
    if content_type not in IMAGE_FORMATS:
        upload.seek(0)
        return upload
    data = _reencoded(upload, content_type)
    upload.seek(0)
    return ContentFile(data, name=upload.name)


def prepare_attachments(uploads: Iterable[UploadedFile]) -> list[tuple[UploadedFile | ContentFile, str]]:
    """Validate, then strip metadata: the `(file, content_type)` pairs submit_question stores."""
    checked = validate_attachments(list(uploads))
    return _all_or_errors(checked, lambda pair: (strip_metadata(*pair), pair[1]))
