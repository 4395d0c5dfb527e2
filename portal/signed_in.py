"""Who is signed in on a request, answered without changing anything (issue 17's early
"my questions" page, consultations/early_list.py).

Django's `auth.get_user` answers the same question but repairs what it finds on the
way: a session whose password hash no longer matches is flushed, one signed with an
old SECRET_KEY is given a new key. A page served before the middleware stack must
not do either, so `quiet_patient` returns a user only when every rule of the normal
path holds as is, and None for anything else; the caller then lets the normal path
run, which does its repairs as always. The rules, each the normal path's own:

- the session exists and has not ended (portal.sessions: the copy carries its end);
- it names a user and one of settings.AUTHENTICATION_BACKENDS, whose `get_user`
  (the `is_active` rule included) returns them;
- its password hash equals the user's, under the current SECRET_KEY;
- the user needs no second factor (not staff, no doctor profile): nothing in
  portal.two_factor applies;
- no message waits in the session, and the idle end is not due to be pushed
  (portal.session_policy.touch_due), so the normal path would not write the session.
"""

import time

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model, load_backend
from django.contrib.messages.storage.session import SessionStorage
from django.core.exceptions import ValidationError
from django.utils.crypto import constant_time_compare
from django.utils.module_loading import import_string

from portal import session_policy
from portal.two_factor import needs_second_factor


def quiet_patient(session_key: str):
    """The signed-in patient of the session `session_key`, or None when the normal path
    has anything to decide or change for it."""
    session = import_string(settings.SESSION_ENGINE).SessionStore(session_key)
    try:
        user_id = get_user_model()._meta.pk.to_python(session[SESSION_KEY])
        backend_path = session[BACKEND_SESSION_KEY]
        session_hash = session[HASH_SESSION_KEY]
    except (KeyError, ValueError, ValidationError):
        return None
    if backend_path not in settings.AUTHENTICATION_BACKENDS:
        return None
    user = load_backend(backend_path).get_user(user_id)
    if user is None or not session_hash or not constant_time_compare(session_hash, user.get_session_auth_hash()):
        return None
    if needs_second_factor(user) or SessionStorage.session_key in session:
        return None
    if session_policy.touch_due(session, user, int(time.time())):
        return None
    return user
