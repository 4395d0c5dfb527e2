"""portal.signed_in.is_quiet_patient: the normal path's sign-in rules, without repairs
(the early "my questions" page). Each rule, broken alone, makes it say no."""

import time

import pytest
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY

from portal import session_policy
from portal.signed_in import BACKEND, is_quiet_patient

pytestmark = pytest.mark.django_db


def session_of(user, **changes) -> dict:
    session = {
        SESSION_KEY: str(user.pk),
        BACKEND_SESSION_KEY: BACKEND,
        HASH_SESSION_KEY: user.get_session_auth_hash(),
        "_session_expiry": session_policy.idle_seconds(user),
        session_policy.TOUCHED_KEY: int(time.time()),
    }
    session.update(changes)
    return {key: value for key, value in session.items() if value is not None}


def test_a_signed_in_patient_with_nothing_to_change(patient):
    assert is_quiet_patient(session_of(patient), patient)


@pytest.mark.parametrize(
    "changes",
    [
        {SESSION_KEY: None},
        {BACKEND_SESSION_KEY: "django.contrib.auth.backends.ModelBackend"},
        {HASH_SESSION_KEY: None},
        {HASH_SESSION_KEY: "0" * 64},
        {"_messages": "[]"},
        {session_policy.TOUCHED_KEY: int(time.time()) - session_policy.TOUCH_INTERVAL_SECONDS},
        {"_session_expiry": 60},
    ],
)
def test_any_rule_broken_says_no(patient, changes):
    assert not is_quiet_patient(session_of(patient, **changes), patient)


def test_another_users_session_says_no(patient, other_patient):
    assert not is_quiet_patient(session_of(other_patient), patient)


def test_an_inactive_user_says_no(patient):
    session = session_of(patient)
    patient.is_active = False
    assert not is_quiet_patient(session, patient)


def test_staff_and_doctors_say_no(patient, doctor):
    session = session_of(patient)
    patient.is_staff = True
    assert not is_quiet_patient(session, patient)
    assert not is_quiet_patient(session_of(doctor.user), doctor.user)


def test_a_remembered_session_needs_no_touch(patient):
    session = session_of(patient, **{session_policy.REMEMBERED_KEY: True, session_policy.TOUCHED_KEY: None})
    assert is_quiet_patient(session, patient)
