"""How long a signed-in session lasts: short for everyone, by default.

Everyone's session ends after a stretch of inactivity: doctors and staff after
STAFF_SESSION_IDLE_SECONDS (30 minutes), patients after PATIENT_SESSION_IDLE_SECONDS
(an hour: long enough to write a question, short enough for a shared computer).
Each request pushes the end forward. A patient may tick "keep me signed in" on
their own device: the session then lasts PATIENT_REMEMBER_DAYS from that login,
whatever the activity, and no longer. Doctors and staff cannot: they see
everyone's medical data.
"""

import time
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver
from django.utils import timezone

from portal.two_factor import needs_second_factor

# Set in a patient's session when they chose "keep me signed in".
REMEMBERED_KEY = "remembered"
# When the idle end was last pushed forward (epoch seconds). Pushing it writes the
# session row, so it is done at most once per TOUCH_INTERVAL_SECONDS, not on every
# page: the idle limit then holds to within that interval.
TOUCHED_KEY = "idle_touched"
TOUCH_INTERVAL_SECONDS = 60


def idle_seconds(user) -> int:
    if needs_second_factor(user):
        return settings.STAFF_SESSION_IDLE_SECONDS
    return settings.PATIENT_SESSION_IDLE_SECONDS


def may_stay_signed_in(user) -> bool:
    return not needs_second_factor(user)


def keep_signed_in(request, now=None) -> None:
    """The patient's explicit choice: a fixed end, PATIENT_REMEMBER_DAYS after this login."""
    now = now or timezone.now()
    request.session[REMEMBERED_KEY] = True
    request.session.set_expiry(now + timedelta(days=settings.PATIENT_REMEMBER_DAYS))


def touch_due(session, user, now: int) -> bool:
    """Whether this request must push the idle end forward (and so write the session):
    never for a remembered patient session, whose end is fixed; otherwise when the end
    is not the idle one or was last pushed TOUCH_INTERVAL_SECONDS or more ago."""
    if session.get(REMEMBERED_KEY) and may_stay_signed_in(user):
        return False
    return (
        session.get("_session_expiry") != idle_seconds(user)
        or now - session.get(TOUCHED_KEY, 0) >= TOUCH_INTERVAL_SECONDS
    )


def touch(request) -> None:
    """Called on each request by a signed-in user: push the idle end forward when due."""
    now = int(time.time())
    if touch_due(request.session, request.user, now):
        request.session.set_expiry(idle_seconds(request.user))
        request.session[TOUCHED_KEY] = now


@receiver(user_logged_in, dispatch_uid="portal.session_policy.start")
def _start(sender, request, user, **kwargs):
    # From the login response on, not from the next request: a session that is never
    # used again must not live for SESSION_COOKIE_AGE. (login() cycles the session key
    # and keeps its data, so clear an earlier choice.)
    if request is not None and hasattr(request, "session"):
        request.session.pop(REMEMBERED_KEY, None)
        request.session.set_expiry(idle_seconds(user))
