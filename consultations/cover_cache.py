"""The duty rule's answer for the ask form and new questions, from the shared cache (issue 17).

`duty.roster_at` reads every candidate doctor, their periods, their specialties and
every specialty (four queries) and runs the duty rule for each: about a quarter of the
CPU of every showing of the ask form, and two queries of every question sent, for an
answer that changes only when the roster is written or a duty boundary comes. So the
answer is kept in the cache (shared by every worker) while all of these hold:

* it is before `Roster.until`, the next duty boundary that could change it: the
  passing of time is exact, not a guess;
* nothing the rule reads has been written since it was worked out: a doctor's profile
  (the switch, verification), their periods or specialties, a specialty, an account.
  Each such write gives the roster a new version once it commits (the receivers below,
  and `forget()` where the code writes with `update()` or `bulk_create()`, which send
  no signal); an answer is only used under the version that was current before its
  queries ran, so one worked out from rows about to change is never used after they
  have;
* COVER_CACHE_SECONDS have not passed: a bound for writes made outside Django.

Each process also keeps the last answer it used, so a showing reads only the small
version key while nothing changed (the answer itself is read and unpickled once per
process and version). A web request reads that key once: a question's post used the
answer twice (the form's specialties, then the doctors on duty to tell), two round
trips to Redis three milliseconds apart. The rest of the request uses the version it
read first, as if it had all run at that moment; a roster write made in the request
itself gives it the new version. So a doctor who comes on duty (in another process)
while a question's post is being handled, after the post read the version (the
length of the request: milliseconds, longer with photos), is not e-mailed about that
question; it is in their queue, and the sweep escalates it like any other. Celery
tasks and commands, outside any request, read the key every time (tasks run eagerly
inside a request, as in the tests, use the request's).

The answer holds no patient data: specialties, times, the fallback and the ids of the
doctors on duty. The due time is
the asker's own: it is worked out again for every showing.
"""

import hashlib
import logging
import time
import uuid
from dataclasses import fields, replace
from datetime import datetime

from asgiref.local import Local
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.signals import request_finished, request_started
from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save

from consultations import duty, sla
from consultations.models import DoctorProfile, DutyPeriod, Specialty
from portal.cache_outage import outage

logger = logging.getLogger(__name__)

# The shape of what is kept is part of its key: after a deploy that changes it, no process
# unpickles an answer written by the code before.
_SHAPE = ",".join(f"{field.name}:{field.type}" for kind in (duty.Roster, duty.Cover) for field in fields(kind))
KEY = f"consultations:duty-roster:{hashlib.sha256(_SHAPE.encode()).hexdigest()[:12]}"
VERSION_KEY = "consultations:duty-roster-version"
COVER_CACHE_SECONDS = 300
# An account save that changes none of these leaves the duty rule's answer as it was.
USER_FIELDS_READ = {"is_active", "time_zone"}


def roster(now: datetime) -> duty.Roster:
    """`duty.roster_at(now)`, kept while it cannot have changed (one small round trip),
    each note's due time that of a question asked at `now`."""
    answer = _kept(now)
    due_at = sla.due_at_for(now)
    if any(cover.due_at != due_at for cover in answer.covers):
        answer = replace(answer, covers=[replace(cover, due_at=due_at) for cover in answer.covers])
    return answer


def _kept(now: datetime) -> duty.Roster:
    """The kept answer: this process's copy when the shared version still names it (one
    small read: no answer to unpickle), else the cache's, else worked out and stored."""
    if outage.active():  # a recent failure: no timeout per request while Redis hangs
        return duty.roster_at(now)
    try:
        version = _version()
    except Exception as error:  # noqa: BLE001 - the cache is down: the rule from the database, kept nowhere
        outage.failed("reading the duty roster's version", error)
        return duty.roster_at(now)
    if version is not None and _usable(_local.get("entry"), version, now):
        return _local["entry"]["roster"]
    entry = _quietly(cache.get, KEY) if version is not None else None
    if version is not None and _usable(entry, version, now):
        _local["entry"] = entry
        return entry["roster"]
    if version is None:
        version = _new_version()
    answer = duty.roster_at(now)
    seconds = min(COVER_CACHE_SECONDS, (answer.until - now).total_seconds())
    if seconds >= 1:
        entry = {
            "version": version,
            "settings": _settings_read(),
            "computed_at": now,
            "stored_at": time.time(),
            "roster": answer,
        }
        _quietly(cache.set, KEY, entry, int(seconds))
        _local["entry"] = entry
    return answer


# This process's copy of the last answer it used (no patient data: see the docstring).
_local: dict = {}
# The version the current web request read (`_request.version`: None until it reads one);
# no attribute at all outside a request. Per thread and per async context.
_request = Local()


def _version() -> str | None:
    """The roster's version: read once per web request, every time outside one."""
    in_request = hasattr(_request, "version")
    if in_request and _request.version is not None:
        return _request.version
    version = cache.get(VERSION_KEY)
    if in_request:
        _request.version = version
    return version


def _request_started(**kwargs) -> None:
    _request.version = None


def _request_finished(**kwargs) -> None:
    try:
        del _request.version
    except AttributeError:
        pass


def _usable(entry: dict | None, version: str, now: datetime) -> bool:
    return (
        entry is not None
        and entry["version"] == version
        and entry["settings"] == _settings_read()
        and entry["computed_at"] <= now < entry["roster"].until
        and time.time() < entry["stored_at"] + COVER_CACHE_SECONDS
    )


def specialties_without_cover(now: datetime) -> list[duty.Cover]:
    """`duty.specialties_without_cover(now)`."""
    return roster(now).covers


def anyone_on_duty_now(specialty_id: int, now: datetime) -> bool:
    """False when no doctor of the specialty is on duty at `now` (then none need be read)."""
    return specialty_id in _kept(now).doctors_on_duty


def specialties(now: datetime) -> list[Specialty]:
    """Every specialty, in their order (the ask form's choices), from the kept answer: a
    question's post needs no notes, so their due times are not worked out again."""
    return _kept(now).specialties


def doctors_on_duty_now(specialty_id: int, now: datetime) -> tuple[int, ...]:
    """The ids of the specialty's doctors on duty at `now` (`duty.on_duty_list`'s, by id)."""
    return _kept(now).doctors_on_duty.get(specialty_id, ())


def _settings_read() -> tuple:
    return (sla.answer_window(), settings.DUTY_FALLBACK_SPECIALTY)


def _new_version() -> str:
    version = uuid.uuid4().hex
    # Tried even during an outage: a roster write must not go unseen once Redis is back.
    _quietly(cache.set, VERSION_KEY, version, None, during_outage=True)
    if hasattr(_request, "version"):
        _request.version = version  # this request's own write: it sees it at once
    return version


def _quietly(operation, *args, during_outage: bool = False):
    """A cache operation whose failure must not fail the request (a question, a sign-up):
    a lost answer is worked out again, a lost version is bounded by COVER_CACHE_SECONDS."""
    if outage.active() and not during_outage:
        return None
    try:
        return operation(*args)
    except Exception as error:  # noqa: BLE001 - the cache is down
        outage.failed(f"the duty roster's {operation.__name__}", error)
        return None


def forget() -> None:
    """A write the duty rule reads: a new version now (readers in this transaction) and
    once it commits (at once outside one), so no answer worked out before is used again."""
    _new_version()
    transaction.on_commit(_new_version)


def _roster_written(sender, **kwargs) -> None:
    forget()


def _account_saved(sender, update_fields=None, **kwargs) -> None:
    if update_fields is None or USER_FIELDS_READ & set(update_fields):
        forget()


def connect() -> None:
    """Called once from ConsultationsConfig.ready()."""
    for model in (DoctorProfile, DutyPeriod, Specialty):
        post_save.connect(_roster_written, sender=model, dispatch_uid=f"cover-cache-save-{model.__name__}")
        post_delete.connect(_roster_written, sender=model, dispatch_uid=f"cover-cache-delete-{model.__name__}")
    m2m_changed.connect(_roster_written, sender=DoctorProfile.specialties.through, dispatch_uid="cover-cache-links")
    user = get_user_model()
    post_save.connect(_account_saved, sender=user, dispatch_uid="cover-cache-user-save")
    post_delete.connect(_roster_written, sender=user, dispatch_uid="cover-cache-user-delete")
    request_started.connect(_request_started, dispatch_uid="cover-cache-request-started")
    request_finished.connect(_request_finished, dispatch_uid="cover-cache-request-finished")
