"""Sessions are read from a copy in the cache and kept in the database (portal/sessions.py,
issue 17): the copy never opens a session the database has ended or deleted."""

from datetime import timedelta

import pytest
import time_machine
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.models import Session
from django.core.cache import cache, caches
from django.test import Client
from django.utils import timezone

from portal import sessions
from portal.sessions import SessionStore
from portal.user_copy import outage

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _copy_store(settings):
    settings.SESSION_ENGINE = "portal.sessions"
    outage.reset()
    yield
    outage.reset()


def unreachable(*args, **kwargs):
    raise ConnectionError("cache down")


def break_cache(monkeypatch, *methods):
    """The session cache's `methods` fail, as when Redis cannot be reached."""
    for method in methods:
        monkeypatch.setattr(caches["default"], method, unreachable)


def saved_session(**data) -> SessionStore:
    store = SessionStore()
    store.update(data)
    store.set_expiry(3600)
    store.save()
    return store


def test_a_saved_session_is_read_from_the_copy_without_the_database(django_assert_num_queries):
    key = saved_session(colour="green").session_key
    with django_assert_num_queries(0):
        assert SessionStore(key).load() == {"colour": "green", "_session_expiry": 3600}


def test_without_a_copy_the_row_answers_and_the_copy_is_written_again(django_assert_num_queries):
    key = saved_session(colour="green").session_key
    cache.delete(sessions.CACHE_KEY_PREFIX + key)  # as after a Redis restart: nothing kept
    with django_assert_num_queries(1):
        assert SessionStore(key).load()["colour"] == "green"
    with django_assert_num_queries(0):
        assert SessionStore(key).load()["colour"] == "green"


def test_a_deleted_session_is_gone_from_the_copy_too():
    store = saved_session(colour="green")
    key = store.session_key
    store.delete()
    assert not Session.objects.filter(session_key=key).exists()
    fresh = SessionStore(key)
    assert fresh.load() == {}
    assert fresh.session_key is None


def test_an_ended_session_is_refused_although_its_copy_is_still_in_the_cache():
    key = saved_session(colour="green").session_key
    with time_machine.travel(timezone.now() + timedelta(seconds=3601)):
        fresh = SessionStore(key)
        assert fresh.load() == {}
        assert fresh.session_key is None


def test_a_cache_that_cannot_be_read_leaves_the_row_to_answer(monkeypatch):
    key = saved_session(colour="green").session_key

    break_cache(monkeypatch, "get", "set", "delete")
    assert SessionStore(key).load()["colour"] == "green"
    changed = SessionStore(key)
    changed["colour"] = "blue"
    changed.save()  # the row is the record: the page still works
    assert SessionStore(key)._get_session_from_db().get_decoded()["colour"] == "blue"


def test_sign_out_fails_rather_than_leave_a_copy_that_still_opens_the_account(monkeypatch):
    store = saved_session(colour="green")
    key = store.session_key

    break_cache(monkeypatch, "set", "delete")
    with pytest.raises(ConnectionError):
        store.delete()
    assert Session.objects.filter(session_key=key).exists()


def test_after_a_cache_failure_the_copy_is_left_alone_for_a_while(monkeypatch, django_assert_num_queries):
    """A hung Redis costs a page one timeout, not one per session read and write."""
    key = saved_session(colour="green").session_key
    calls = []

    def unreachable(*args, **kwargs):
        calls.append(args)
        raise ConnectionError("cache down")

    monkeypatch.setattr(caches["default"], "get", unreachable)
    monkeypatch.setattr(caches["default"], "set", unreachable)
    store = SessionStore(key)
    assert store.load()["colour"] == "green"
    store["colour"] = "blue"
    store.save()
    assert SessionStore(key).load()["colour"] == "blue"
    assert len(calls) == 1


def test_a_key_django_never_issues_is_not_looked_up_in_the_cache():
    store = SessionStore("not a key\r\n" + "x" * 40)
    assert store._cache_key(store.session_key) is None
    assert store.load() == {}


def test_logout_ends_the_session_for_every_process(patient):
    """A logout is seen by a process whose cache copy it deleted: the next page is anonymous."""
    client = Client()
    client.force_login(patient)
    key = client.session.session_key
    assert SessionStore(key).load()[SESSION_KEY] == str(patient.pk)
    client.post("/accounts/logout/")
    assert SessionStore(key).load() == {}
    assert cache.get(sessions.CACHE_KEY_PREFIX + key) == sessions.ENDED


def test_a_visitor_with_a_session_still_signs_in_while_redis_cannot_delete(monkeypatch, patient):
    """The key change at sign-in (session fixation) deletes the visitor's old session. Its
    copy holds no signed-in user (a draft's token, messages): it opens nothing, so a copy
    that cannot be marked ended does not stop a patient from signing in; the row still goes."""
    from tests.factories import PASSWORD

    client = Client()
    visitor = SessionStore()
    visitor["question_draft"] = "a visitor's draft token"
    visitor.save()
    client.cookies["sessionid"] = visitor.session_key

    break_cache(monkeypatch, "set", "delete")
    response = client.post("/accounts/login/", {"username": patient.email, "password": PASSWORD})

    assert response.status_code == 302
    assert client.session[SESSION_KEY] == str(patient.pk)
    assert client.session.session_key != visitor.session_key
    assert not Session.objects.filter(session_key=visitor.session_key).exists()


def test_a_signed_in_session_s_old_key_must_still_go_from_the_cache(monkeypatch, patient):
    """A key change of a signed-in session (a password change): its old copy carries the
    user, so it is marked ended or the change fails."""
    store = saved_session(**{SESSION_KEY: str(patient.pk)})

    break_cache(monkeypatch, "set", "delete")
    with pytest.raises(ConnectionError):
        store.cycle_key()
