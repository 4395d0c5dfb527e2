"""Pictures you can see: thumbnails of patients' photos and the labels they are shown with.

A thumbnail is made once, on its first request, from the stored (already
re-encoded) picture and kept next to it in the private storage, through the
storage API only (the storage may be an S3 bucket). It is re-encoded by Pillow,
so what the browser shows inline is always a picture we wrote ourselves.
"""

import contextlib
import logging
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile

from consultations import uploads
from consultations.models import Attachment

logger = logging.getLogger(__name__)

# The longest side of a thumbnail, in pixels: sharp at twice the 160 px it is shown at.
THUMBNAIL_MAX_SIDE = 320
THUMBNAIL_FOLDER = "thumbnails"


def is_picture(attachment: Attachment) -> bool:
    return attachment.content_type in uploads.IMAGE_FORMATS


def thumbnail_name(attachment: Attachment) -> str:
    """Where the thumbnail is kept: derived from the picture's own random name."""
    return f"{THUMBNAIL_FOLDER}/{attachment.file.name}-{THUMBNAIL_MAX_SIDE}.{attachment.extension}"


class NoThumbnail(Exception):
    """The attachment is not a picture, is missing, or cannot be read as one."""


def thumbnail(attachment: Attachment) -> bytes:
    """The thumbnail's bytes (same type as the picture), made and stored on first use.

    Two first requests at once both make it; the storage keeps one, and a copy saved
    under another name is removed again.
    """
    if not is_picture(attachment):
        raise NoThumbnail("not a picture")
    storage = attachment.file.storage
    name = thumbnail_name(attachment)
    if storage.exists(name):
        with storage.open(name, "rb") as stored:
            return stored.read()
    try:
        with attachment.file.open("rb") as source:
            data = uploads.thumbnail_bytes(source, attachment.content_type, THUMBNAIL_MAX_SIDE)
    except FileNotFoundError:
        raise NoThumbnail("missing") from None
    except ValidationError:
        logger.warning("Attachment %s is not a readable picture; no thumbnail", attachment.pk)
        raise NoThumbnail("unreadable") from None
    saved = storage.save(name, ContentFile(data))
    if saved != name:
        with contextlib.suppress(Exception):
            storage.delete(saved)
    return data


def stored_as_recorded(attachment: Attachment, handle) -> bool:
    """True when the stored file starts as a file of its recorded type does (checked
    before a picture is shown inline; the handle is left at its start)."""
    head = handle.read(16)
    handle.seek(0)
    return uploads.has_signature_of(head, attachment.content_type)


@dataclass(frozen=True)
class ShownAttachment:
    """One attachment as a page lists it: pictures get a thumbnail and "Photo 2 of 3"."""

    attachment: Attachment
    label: str  # no clinical text: never the patient's file name
    is_picture: bool


def shown_attachments(attachments) -> list[ShownAttachment]:
    attachments = list(attachments)
    pictures = [attachment for attachment in attachments if is_picture(attachment)]
    documents = [attachment for attachment in attachments if not is_picture(attachment)]
    shown = [
        ShownAttachment(attachment, f"Photo {number} of {len(pictures)}", True)
        for number, attachment in enumerate(pictures, start=1)
    ]
    shown += [
        ShownAttachment(attachment, f"Document {number} of {len(documents)}", False)
        for number, attachment in enumerate(documents, start=1)
    ]
    return shown
