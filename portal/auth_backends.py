"""The signed-in user of each request in one query (issue 17).

Django's ModelBackend reads the user row; the 2FA rule (portal.two_factor.
needs_second_factor) then asked for the doctor profile in a second query on every
page. Reading both in one join gives the same answer: a user without a profile
gets None cached, so `hasattr(user, "doctor_profile")` asks the database nothing. A patient's row
is read from a copy in the cache when there is one (portal/user_copy.py).
"""

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend

from portal import user_copy


class PortalModelBackend(ModelBackend):
    """Django's ModelBackend (the same password check and `is_active` rule) whose
    `get_user`, run on every signed-in request, also reads the doctor profile."""

    def get_user(self, user_id):
        user = user_copy.read(user_id)
        if user is None:
            user_model = get_user_model()
            try:
                user = user_model._default_manager.select_related("doctor_profile").get(pk=user_id)
            except user_model.DoesNotExist:
                return None
            user_copy.store(user)
        return user if self.user_can_authenticate(user) else None
