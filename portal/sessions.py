"""Sessions kept in PostgreSQL, read from Redis (issue 17: the session row was one of
the four round trips before any signed-in page).

PostgreSQL stays the record: every session is written there, so a restart of
Redis (which keeps nothing on disk here) signs nobody out and a session deleted
there (logout, a new login's key change) is gone. Redis holds a copy of each
session's data with the instant it ends, written on each save; a page reads the
copy and falls back to the row when there is none.

What differs from Django's `cached_db` backend, and why:
- The copy carries its end and is refused once past it, as the row would be
  (Django's trusts the cache timeout alone; the idle limit must not depend on it).
- Signing out deletes the copy before the row: when Redis cannot be reached the
  sign-out fails (and can be retried) rather than leaving a copy that still opens
  the account. The copy is deleted again after the row, in case a page read the
  row in between.
- A page still works when Redis is down: reads and writes of the copy are then
  skipped, and the row answers. After a failure the copy is left alone for a few
  seconds (portal.user_copy.outage), so a hung Redis costs a page one timeout.
  A copy not updated then is older than its row: it may end sooner, and lacks
  what the row gained; everything that signs a session out deletes it instead.
- The async methods go through the same code, so no path updates one store only.
"""

from datetime import datetime

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore as DBStore
from django.core.cache import caches
from django.utils import timezone

from articles.cache import CACHE_ERRORS
from portal.user_copy import outage

CACHE_KEY_PREFIX = "portal.session:"


class SessionStore(DBStore):
    def __init__(self, session_key=None):
        self._cache = caches[settings.SESSION_CACHE_ALIAS]
        self._saved_expiry = None
        self._old_copy_opens_nothing = False
        super().__init__(session_key)

    @staticmethod
    def _cache_key(session_key: str | None) -> str | None:
        """The copy's key; None for a key Django would never issue (no copy is read or kept)."""
        if session_key and session_key.isalnum() and len(session_key) <= 64:
            return CACHE_KEY_PREFIX + session_key
        return None

    # --- The copy -------------------------------------------------------------------------

    def _read_copy(self) -> dict | None:
        key = self._cache_key(self.session_key)
        if key is None or outage.active():
            return None
        try:
            copy = self._cache.get(key)
        except CACHE_ERRORS as error:
            outage.failed("reading a session", error)
            return None
        if not isinstance(copy, tuple) or len(copy) != 2:
            return None
        data, ends = copy
        if ends <= timezone.now():
            # Ended, as the row has: the same answer the database would give.
            self._session_key = None
            return {}
        return data

    def _write_copy(self, data: dict, ends: datetime) -> None:
        key = self._cache_key(self.session_key)
        if key is None or ends is None or outage.active():
            return
        seconds = int((ends - timezone.now()).total_seconds())
        try:
            if seconds > 0:
                self._cache.set(key, (data, ends), seconds)
            else:
                self._cache.delete(key)
        except CACHE_ERRORS as error:
            outage.failed("writing a session", error)

    # --- The store's methods --------------------------------------------------------------

    def load(self):
        data = self._read_copy()
        if data is not None:
            return data
        row = self._get_session_from_db()
        if row is None:
            return {}
        data = self.decode(row.session_data)
        self._write_copy(data, row.expire_date)
        return data

    def create_model_instance(self, data):
        instance = super().create_model_instance(data)
        self._saved_expiry = instance.expire_date  # the row's own end, for the copy
        return instance

    def save(self, must_create=False):
        super().save(must_create)
        self._write_copy(self._get_session(no_load=must_create), self._saved_expiry)

    def delete(self, session_key=None):
        if session_key is None:
            if self.session_key is None:
                return
            session_key = self.session_key
        key = self._cache_key(session_key)
        if key is not None:
            try:
                self._cache.delete(key)
            except CACHE_ERRORS as error:
                if not self._old_copy_opens_nothing:
                    raise  # Redis is unreachable: the row is kept too, and the sign-out can be retried
                outage.failed("deleting a visitor's session copy at sign-in", error)
        super().delete(session_key)
        if key is not None:
            try:
                self._cache.delete(key)
            except CACHE_ERRORS as error:
                outage.failed("deleting a session a second time", error)

    def cycle_key(self):
        """A new key for the same data (Django's defence against session fixation, at sign-in
        and password changes); the old key's row and copy are deleted. A visitor's session
        (no signed-in user: a draft's token, messages) has a copy that opens nothing, so when
        Redis cannot delete it the patient still signs in; it ends with its session. A
        signed-in session's old copy must go, or the key change fails."""
        self._old_copy_opens_nothing = SESSION_KEY not in self._session
        try:
            super().cycle_key()
        finally:
            self._old_copy_opens_nothing = False

    async def aload(self):
        return await sync_to_async(self.load)()

    async def asave(self, must_create=False):
        return await sync_to_async(self.save)(must_create)

    async def adelete(self, session_key=None):
        return await sync_to_async(self.delete)(session_key)
