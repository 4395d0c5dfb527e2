"""Who is signed in on a request, answered without changing anything (issue 17's early
"my questions" page, consultations/early_list.py).

Django's `auth.get_user` answers the same question but repairs what it finds on the
way: a session whose password hash no longer matches is flushed, one signed with an
old SECRET_KEY is given a new key. A page served before the middleware stack must
not do either, so `is_quiet_patient` says yes only when every rule of the normal path
holds as is, and no for anything else; the caller then lets the normal path run,
which does its repairs as always. The caller reads the session's data and the user's
row from the database (the record, not a copy); the rules, each the normal path's own:

- the session names this user, and PortalModelBackend (the portal's one session
  backend, in settings.AUTHENTICATION_BACKENDS), whose `get_user` is the row with
  its `is_active` rule;
- its password hash equals the user's, under the current SECRET_KEY;
- the user needs no second factor (not staff, no doctor profile): nothing in
  portal.two_factor applies;
- no message waits in the session, and the idle end is not due to be pushed
  (portal.session_policy.touch_due), so the normal path would not write the session.
"""

import time
from collections.abc import Mapping

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, load_backend
from django.contrib.messages.storage.session import SessionStorage
from django.utils.crypto import constant_time_compare

from portal import session_policy
from portal.two_factor import needs_second_factor

BACKEND = "portal.auth_backends.PortalModelBackend"


def is_quiet_patient(session: Mapping, user) -> bool:
    """Whether `user` (their row as it is now) is the signed-in patient of the session
    whose data is `session`, with nothing the normal path would decide or change."""
    if str(session.get(SESSION_KEY)) != str(user.pk) or session.get(BACKEND_SESSION_KEY) != BACKEND:
        return False
    if BACKEND not in settings.AUTHENTICATION_BACKENDS or not load_backend(BACKEND).user_can_authenticate(user):
        return False
    session_hash = session.get(HASH_SESSION_KEY)
    if not session_hash or not constant_time_compare(session_hash, user.get_session_auth_hash()):
        return False
    if needs_second_factor(user) or SessionStorage.session_key in session:
        return False
    return not session_policy.touch_due(session, user, int(time.time()))
