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
- Ending a session (signing out, a login's or password change's new key) replaces
  the copy with an "ended" mark before the row is deleted, and again when that
  deletion commits. A page that finds the mark has no session (it does not ask
  the database), and no copy is written over it: a page that read the row (or
  saved it) just before the session ended cannot bring the session back by
  writing its copy after, whoever holds the old cookie. Reading the row, then
  adding the copy (SET NX) only if the key is empty; saving, then setting the copy
  only if the key holds no mark (one Lua script, atomic): each one round trip, as
  before. The mark lives ENDED_SECONDS, longer than any request can run between
  its read or save of the row and its write of the copy (gunicorn kills a web
  worker busy with one request for longer than its --timeout, 60 s).
- When Redis cannot be reached the mark cannot be set and the sign-out fails (and
  can be retried) rather than leaving a copy that still opens the account.
- A page still works when Redis is down: reads and writes of the copy are then
  skipped, and the row answers. After a failure the copy is left alone for a few
  seconds (portal.user_copy.outage), so a hung Redis costs a page one timeout.
  A copy not updated then is older than its row: it may end sooner, and lacks
  what the row gained; everything that signs a session out marks it ended instead.
- The async methods go through the same code, so no path updates one store only.
"""

from datetime import datetime

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore as DBStore
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from django.db import router, transaction
from django.utils import timezone

from articles.cache import CACHE_ERRORS
from portal.user_copy import outage

CACHE_KEY_PREFIX = "portal.session:"
# What an ended session's copy is replaced with: no session.
ENDED = "portal.session.ended"
# How long the mark stays: longer than any request can take between reading or
# saving the row and writing the copy. Web requests are bounded by gunicorn's
# --timeout (60 s in the Procfiles and deploy/systemd): a sync worker stuck in one
# request longer than that is killed, and its write never lands.
# A key is never issued twice, so the mark holds nothing back but the old copy;
# its cost is one small key per ended session for five minutes.
ENDED_SECONDS = 300

# Set the copy unless the key holds the ended mark (KEYS[1]: the key; ARGV: the mark,
# the copy, its seconds). Atomic in Redis: no mark can land between the test and the set.
_SET_UNLESS_ENDED = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return 1
"""
_script = None  # redis-py's Script: EVALSHA, loading the script again after a Redis restart


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
        if copy == ENDED:
            # Signed out (or a new key given): no session, whatever the row still says
            # in the instant before its deletion commits.
            self._session_key = None
            return {}
        if not isinstance(copy, tuple) or len(copy) != 2:
            return None
        data, ends = copy
        if ends <= timezone.now():
            # Ended, as the row has: the same answer the database would give.
            self._session_key = None
            return {}
        return data

    def _write_copy(self, data: dict, ends: datetime, *, replace: bool) -> None:
        """Write the copy, never over the ended mark: `replace` False (a page that read the
        row and found no copy) adds it only if the key is empty, True (a save) sets it
        unless the mark is there. A save whose end is already past ends the copy too."""
        key = self._cache_key(self.session_key)
        if key is None or ends is None or outage.active():
            return
        seconds = int((ends - timezone.now()).total_seconds())
        try:
            if seconds <= 0:
                if replace:  # the copy from before would still open the session until its own end
                    self._mark_ended(key)
            elif replace:
                self._set_unless_ended(key, (data, ends), seconds)
            else:
                self._cache.add(key, (data, ends), seconds)
        except CACHE_ERRORS as error:
            outage.failed("writing a session", error)

    def _set_unless_ended(self, key: str, value, seconds: int) -> None:
        cache = self._cache
        if not isinstance(cache, RedisCache):
            # Other caches (the local memory one, in tests run without Redis): not atomic,
            # and only ever used by one process.
            if cache.get(key) != ENDED:
                cache.set(key, value, seconds)
            return
        global _script
        client = cache._cache.get_client(write=True)
        if _script is None:
            _script = client.register_script(_SET_UNLESS_ENDED)
        serializer = cache._cache._serializer
        _script(
            keys=[cache.make_and_validate_key(key)],
            args=[serializer.dumps(ENDED), serializer.dumps(value), seconds],
            client=client,
        )

    def _mark_ended(self, key: str) -> None:
        self._cache.set(key, ENDED, ENDED_SECONDS)

    def _mark_ended_again(self, key: str) -> None:
        try:
            self._mark_ended(key)
        except CACHE_ERRORS as error:  # the first mark stands for ENDED_SECONDS
            outage.failed("marking a session ended at commit", error)

    # --- The store's methods --------------------------------------------------------------

    def load(self):
        data = self._read_copy()
        if data is not None:
            return data
        row = self._get_session_from_db()
        if row is None:
            return {}
        data = self.decode(row.session_data)
        self._write_copy(data, row.expire_date, replace=False)
        return data

    def create_model_instance(self, data):
        instance = super().create_model_instance(data)
        self._saved_expiry = instance.expire_date  # the row's own end, for the copy
        return instance

    def save(self, must_create=False):
        super().save(must_create)
        self._write_copy(self._get_session(no_load=must_create), self._saved_expiry, replace=True)

    def delete(self, session_key=None):
        if session_key is None:
            if self.session_key is None:
                return
            session_key = self.session_key
        key = self._cache_key(session_key)
        if key is not None:
            try:
                self._mark_ended(key)
            except CACHE_ERRORS as error:
                if not self._old_copy_opens_nothing:
                    raise  # Redis is unreachable: the row is kept too, and the sign-out can be retried
                outage.failed("marking a visitor's session ended at sign-in", error)
        super().delete(session_key)
        if key is not None:
            # Again once the row's deletion is seen by everyone (at once outside a transaction),
            # so the mark outlasts ENDED_SECONDS from then, however long the deletion waited.
            transaction.on_commit(lambda: self._mark_ended_again(key), using=router.db_for_write(self.model))

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
