"""Invalidate the cached public pages whenever something they show changes."""

from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save

from articles.cache import bump_version
from articles.models import Article, Source, Tag
from consultations.models import DoctorProfile, Specialty


def _invalidate(**kwargs):
    # Now, so this request sees fresh pages; and after commit, so a page cached
    # by another request while the transaction was open is not kept.
    bump_version()
    transaction.on_commit(bump_version)


def connect() -> None:
    for model in (Article, Source, Tag, DoctorProfile, Specialty):
        post_save.connect(_invalidate, sender=model, dispatch_uid=f"articles-cache-save-{model.__name__}")
        post_delete.connect(_invalidate, sender=model, dispatch_uid=f"articles-cache-delete-{model.__name__}")
    m2m_changed.connect(_invalidate, sender=Article.tags.through, dispatch_uid="articles-cache-tags")
    m2m_changed.connect(_invalidate, sender=DoctorProfile.specialties.through, dispatch_uid="articles-cache-doctor")
