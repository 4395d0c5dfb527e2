"""Storing a patient's checked files with their question or reply, and removing them again
when the transaction that recorded them rolls back (services.submit_question, follow-ups)
or when their record is deleted (`connect`: with its thumbnail, once the deletion commits)."""

import contextlib
import logging
from datetime import datetime

from django.core.files import File
from django.db import transaction
from django.db.models.signals import post_delete

from consultations.models import Attachment, Question, Reply, private_storage

logger = logging.getLogger(__name__)


def store(question: Question, files, now: datetime, stored: list[str], reply: Reply | None = None):
    """Save checked `(file, content_type)` pairs to the question (and to a patient's reply);
    each stored name is appended to `stored` so a rollback can remove the files."""
    for upload, content_type in files:
        attachment = Attachment(
            question=question,
            reply=reply,
            original_name=(upload.name or "attachment")[:255],
            content_type=content_type,
            size=upload.size,
            uploaded_at=now,
        )
        # Copied, never moved: storage moves a large upload's temporary file
        # away, and a retry after a database error must find it again.
        attachment.file.save(upload.name or "attachment", File(upload), save=False)
        stored.append(attachment.file.name)
        attachment.save()


def forget(stored: list[str]) -> None:
    """Rolled back: a patient's file must not stay in storage with no record pointing at it."""
    for name in stored:
        # Never hide the error that got us here (a folder's OSError, a bucket's client error).
        with contextlib.suppress(Exception):
            private_storage().delete(name)


def connect() -> None:
    post_delete.connect(_forget_deleted, sender=Attachment, dispatch_uid="consultations.attachments.deleted")


def _forget_deleted(sender, instance: Attachment, using=None, **kwargs) -> None:
    """A deleted attachment (alone, or with its question, reply or patient) takes its file and
    its thumbnail with it once the deletion commits; a rolled-back deletion keeps both."""
    from consultations.pictures import is_picture, thumbnail_name

    if not instance.file.name:
        return
    names = [instance.file.name, *([thumbnail_name(instance)] if is_picture(instance) else [])]
    transaction.on_commit(lambda: _remove(names), using=using)


def _remove(names: list[str]) -> None:
    """Unlike `forget` (on the way out of an error), a failure here is the only trace that a
    patient's file outlived its record: it is logged."""
    storage = private_storage()
    for name in names:
        try:
            storage.delete(name)
        except Exception:  # noqa: BLE001 - the deletion committed; the file is left for an operator
            logger.warning("Could not remove %s from private storage after its record was deleted", name, exc_info=True)
