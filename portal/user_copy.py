"""A patient's user row read from a copy in the cache (issue 17): with the session
also read from Redis, a signed-in page that needs nothing else from PostgreSQL
makes no database round trip at all (not even the connection health check).

Only users without a doctor profile are copied: doctors' profiles change by
`QuerySet.update()` (duty switches, verification in the admin), which sends no
signal, so a doctor is always read from the database.

Every save or deletion of a user, and every doctor profile created or deleted,
replaces the copy with a short-lived "changed" mark, at once and again when the
transaction commits. While the mark is there no page stores a copy, so a page that
read the old row just before the change cannot put it back after the change: the
next page after a password change, a deactivation or a staff flag change reads the
database. A copy also lives at most COPY_SECONDS.

Code that changes users without `save()` (`QuerySet.update()`, raw SQL) must call
`mark_changed` for each of them; nothing in the portal does today.
"""

import logging

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from articles.cache import CACHE_ERRORS

logger = logging.getLogger(__name__)

KEY_PREFIX = "portal.user:"
COPY_SECONDS = 300
# Longer than any gap between a page reading a row and storing its copy.
CHANGED_MARK_SECONDS = 30
CHANGED = "changed"


def _key(user_id) -> str:
    return f"{KEY_PREFIX}{user_id}"


def read(user_id):
    """The user from the copy, None when there is none (or it is marked changed)."""
    if not settings.SIGNED_IN_COPIES:
        return None
    try:
        copy = cache.get(_key(user_id))
    except CACHE_ERRORS:
        return None
    user_model = get_user_model()
    return copy if isinstance(copy, user_model) else None


def store(user) -> None:
    """Keep a copy of a user just read (with its doctor profile) from the database,
    unless they are a doctor or a change is marked."""
    if not settings.SIGNED_IN_COPIES or getattr(user, "doctor_profile", None) is not None:
        return
    try:
        cache.add(_key(user.pk), user, COPY_SECONDS)  # refused while a "changed" mark is there
    except CACHE_ERRORS:
        logger.warning("User copy not stored (cache unavailable)")


def mark_changed(user_id) -> None:
    key = _key(user_id)

    def mark():
        try:
            cache.set(key, CHANGED, CHANGED_MARK_SECONDS)
        except CACHE_ERRORS:
            logger.warning("User copy not marked changed (cache unavailable)")

    mark()
    transaction.on_commit(mark)


@receiver(post_save, sender="portal.User", dispatch_uid="portal.user_copy.user_saved")
@receiver(post_delete, sender="portal.User", dispatch_uid="portal.user_copy.user_deleted")
def _user_changed(sender, instance, **kwargs):
    mark_changed(instance.pk)


@receiver(post_save, sender="consultations.DoctorProfile", dispatch_uid="portal.user_copy.profile_saved")
@receiver(post_delete, sender="consultations.DoctorProfile", dispatch_uid="portal.user_copy.profile_deleted")
def _profile_changed(sender, instance, **kwargs):
    mark_changed(instance.user_id)
