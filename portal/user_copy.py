"""A patient's user row read from a copy in the cache (issue 17): with the session
also read from Redis, a signed-in page that needs nothing else from PostgreSQL
makes no database round trip at all (not even the connection health check).

Only users without a doctor profile are copied: doctors' profiles change by
`QuerySet.update()` (duty switches, verification in the admin), which sends no
signal, so a doctor is always read from the database.

Every save or deletion of a user, and every doctor profile created or deleted,
replaces the copy with a short-lived "changed" mark, before the row is written
and again when the transaction commits. While the mark is there no page stores a
copy, so a page that read the old row just before the change cannot put it back
after the change: the next page after a password change, a deactivation or a
staff flag change reads the database. A copy also lives at most COPY_SECONDS.

When Redis cannot be reached the mark cannot be set, and a Redis that was only
unreachable (not restarted) would still hold the old copy afterwards: such a
change is refused (CopyNotMarked, before the row is written) rather than left
unseen. A login's `last_login` alone sets no mark at all (it changes nothing a
copy is trusted for), so the pages right after signing in already read the copy.
Pages skip both copies for a few seconds after a failure (`outage`), so a hung
Redis costs a page one timeout, not one per copy.

Code that changes users without `save()` (`QuerySet.update()`, raw SQL) must call
`mark_changed` for each of them; nothing in the portal does today.
"""

import logging

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import transaction
from django.db.models.signals import pre_delete, pre_save
from django.dispatch import receiver

from articles.cache import CACHE_ERRORS
from portal.cache_outage import outage  # noqa: F401 - also portal.sessions'; one failure skips Redis briefly

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
    if not settings.SIGNED_IN_COPIES or outage.active():
        return None
    try:
        copy = cache.get(_key(user_id))
    except CACHE_ERRORS as error:
        outage.failed("reading a user", error)
        return None
    user_model = get_user_model()
    return copy if isinstance(copy, user_model) else None


def store(user) -> None:
    """Keep a copy of a user just read (with its doctor profile) from the database,
    unless they are a doctor or a change is marked."""
    if not settings.SIGNED_IN_COPIES or outage.active() or getattr(user, "doctor_profile", None) is not None:
        return
    try:
        cache.add(_key(user.pk), user, COPY_SECONDS)  # refused while a "changed" mark is there
    except CACHE_ERRORS as error:
        outage.failed("storing a user", error)


class CopyNotMarked(Exception):
    """A user's change is refused: their cached copy could not be marked changed."""


def _mark(key: str) -> None:
    cache.set(key, CHANGED, CHANGED_MARK_SECONDS)


def mark_changed(user_id, *, required: bool = True) -> None:
    """Mark the user's copy changed now and when the transaction commits. Raises
    CopyNotMarked when Redis cannot be reached and the change must not go unseen."""
    key = _key(user_id)
    try:
        _mark(key)
    except CACHE_ERRORS as error:
        outage.failed("marking a user changed", error)
        if required:
            raise CopyNotMarked(f"user {user_id}: {error}") from error
    else:
        transaction.on_commit(lambda: _mark_again(key))


def _mark_again(key: str) -> None:
    try:
        _mark(key)
    except CACHE_ERRORS as error:  # the first mark stands for CHANGED_MARK_SECONDS
        outage.failed("marking a user changed at commit", error)


# Saves that change nothing a copy is trusted for (a login's last_login).
HARMLESS_FIELDS = frozenset({"last_login"})


@receiver(pre_save, sender="portal.User", dispatch_uid="portal.user_copy.user_saving")
def _user_saving(sender, instance, update_fields=None, **kwargs):
    if instance.pk is None:
        return  # a new user has no copy
    if update_fields is not None and set(update_fields) <= HARMLESS_FIELDS:
        # A login: no mark, so the pages right after it (a patient signs in to ask) read
        # the copy. A copy may keep the previous last_login for up to COPY_SECONDS;
        # nothing reads it from a signed-in request's user. A mark already set by a
        # real change is left as it is.
        return
    mark_changed(instance.pk)


@receiver(pre_delete, sender="portal.User", dispatch_uid="portal.user_copy.user_deleting")
def _user_deleting(sender, instance, **kwargs):
    mark_changed(instance.pk)


@receiver(pre_save, sender="consultations.DoctorProfile", dispatch_uid="portal.user_copy.profile_saving")
def _profile_saving(sender, instance, **kwargs):
    # A patient becoming a doctor: their copy says "no profile", and must go before the
    # profile exists. (A doctor has no copy, so other profile changes need no mark.)
    if instance._state.adding:
        mark_changed(instance.user_id)
