"""A session that ends stays ended in its Redis copy too (portal/sessions.py), whatever a
request that read it just before was doing: a page that read the row before a sign-out
and writes its copy after it must not open the account again for whoever holds the old
cookie (a copied cookie, a stale tab). Each test forces the interleaving."""

from datetime import timedelta

import pytest
import time_machine
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore as DatabaseStore
from django.contrib.sessions.models import Session
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from portal import sessions, user_copy
from portal.sessions import SessionStore
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

SIGNED_IN_PAGES = ("consultations:my_questions", "profile")


@pytest.fixture(autouse=True)
def _copies(settings):
    """As deployed with Redis: sessions read from their copies."""
    settings.SIGNED_IN_COPIES = True
    settings.SESSION_ENGINE = "portal.sessions"
    settings.REQUIRE_2FA = False
    user_copy.outage.reset()
    yield
    user_copy.outage.reset()


def signed_in(patient, *, remember: bool = True) -> tuple[Client, str]:
    client = Client()
    form = {"username": patient.email, "password": PASSWORD}
    if remember:
        form["remember_me"] = "on"  # a fixed end: its pages never write the session
    assert client.post(reverse("login"), form).status_code == 302
    key = client.cookies["sessionid"].value
    assert client.get(reverse("consultations:my_questions")).status_code == 200
    return client, key


def assert_the_old_cookie_opens_nothing(key: str) -> None:
    assert not Session.objects.filter(session_key=key).exists()
    holder = Client()
    holder.cookies["sessionid"] = key
    for name in SIGNED_IN_PAGES:
        response = holder.get(reverse(name))
        assert response.status_code == 302, name
        assert response["Location"].startswith(reverse("login")), name


def while_the_row_is_read(monkeypatch, ending):
    """The next read of a session row runs `ending` right after it (the row read, not yet
    copied to Redis)."""
    original = SessionStore._get_session_from_db

    def read_then_end(self):
        row = original(self)
        monkeypatch.setattr(SessionStore, "_get_session_from_db", original)
        ending()
        return row

    monkeypatch.setattr(SessionStore, "_get_session_from_db", read_then_end)


def a_page_without_the_copy(key: str) -> None:
    """A page of the old cookie's that finds no copy (evicted, Redis restarted, or not yet
    written) and so reads the row and writes the copy."""
    store = SessionStore(key)
    store._cache.delete(sessions.CACHE_KEY_PREFIX + key)
    store.load()


def sign_out(client: Client) -> None:
    assert client.post(reverse("logout")).status_code == 302


# flush: what a sign-out and a rejected session do; cycle_key: a login's new key for the same
# data (Django's defence against session fixation), which deletes the old key.
@pytest.mark.parametrize("ending", ["sign_out", "flush", "cycle_key"])
def test_a_page_that_read_the_row_before_the_session_ended_does_not_bring_it_back(monkeypatch, patient, ending):
    victim, key = signed_in(patient)
    end = {
        "sign_out": lambda: sign_out(victim),
        "flush": lambda: SessionStore(key).flush(),
        "cycle_key": lambda: SessionStore(key).cycle_key(),
    }[ending]

    while_the_row_is_read(monkeypatch, end)
    a_page_without_the_copy(key)  # writes its copy after the session ended

    assert_the_old_cookie_opens_nothing(key)


def test_a_session_save_that_lands_after_a_sign_out_does_not_bring_it_back(monkeypatch, patient):
    """The idle end's push (portal/session_policy.touch, on a page every minute) saves the
    row, then the copy: a sign-out between the two must still end the session."""
    victim, key = signed_in(patient, remember=False)
    original_save = DatabaseStore.save

    def save_row_then_sign_out(self, must_create=False):
        original_save(self, must_create)
        monkeypatch.setattr(DatabaseStore, "save", original_save)
        if self.session_key == key:
            sign_out(victim)

    stale_tab = Client()
    stale_tab.cookies["sessionid"] = key
    monkeypatch.setattr(DatabaseStore, "save", save_row_then_sign_out)
    with time_machine.travel(timezone.now() + timedelta(minutes=2)):  # the idle end is due a push
        stale_tab.get(reverse("profile"))

    assert_the_old_cookie_opens_nothing(key)


def test_a_page_that_read_the_row_before_it_expired_and_was_cleared_does_not_bring_it_back(monkeypatch, patient):
    """Expiry: the copy carries the row's end and is refused past it (and clearsessions,
    run meanwhile, deleted the row)."""
    victim, key = signed_in(patient, remember=False)
    later = timezone.now() + timedelta(hours=2)  # past the idle hour

    def expire_and_clear():
        with time_machine.travel(later):
            call_command("clearsessions")

    while_the_row_is_read(monkeypatch, expire_and_clear)
    a_page_without_the_copy(key)  # read while still valid, copied after the row went
    with time_machine.travel(later):
        assert_the_old_cookie_opens_nothing(key)


def test_a_signed_out_session_s_copy_says_so_and_is_not_written_again(patient, django_assert_num_queries):
    victim, key = signed_in(patient)
    sign_out(victim)
    store = SessionStore(key)
    with django_assert_num_queries(0):  # no session: the database is not asked
        assert store.load() == {}
    assert store.session_key is None
    assert store._cache.get(sessions.CACHE_KEY_PREFIX + key) == sessions.ENDED


def test_a_new_session_still_gets_its_copy(patient, django_assert_num_queries):
    """The ended mark is per key: a new login's session is read from its copy at once."""
    victim, old_key = signed_in(patient)
    sign_out(victim)
    client, key = signed_in(patient)
    assert key != old_key
    with django_assert_num_queries(0):
        assert SessionStore(key).load()[SESSION_KEY] == str(patient.pk)


def test_a_save_replaces_the_copy_but_never_the_ended_mark(django_assert_num_queries):
    store = SessionStore()
    store["colour"] = "green"
    store.save()
    key = store.session_key
    store["colour"] = "blue"
    store.save()
    with django_assert_num_queries(0):  # read from the copy, which the save replaced
        assert SessionStore(key).load()["colour"] == "blue"

    SessionStore(key).delete()  # marked ended, row gone
    store["colour"] = "red"
    store._write_copy(dict(store.items()), timezone.now() + timedelta(hours=1), replace=True)
    assert store._cache.get(sessions.CACHE_KEY_PREFIX + key) == sessions.ENDED


def test_the_copy_is_still_written_after_redis_forgot_the_script(settings, django_assert_num_queries):
    """A Redis restart empties its script cache: the write loads the script again."""
    if "Redis" not in settings.CACHES["default"]["BACKEND"]:
        pytest.skip("the Lua script is used on Redis only")
    store = SessionStore()
    store["colour"] = "green"
    store.save()
    sessions._script.sha = "0" * 40  # as unknown to the server as after a restart
    store["colour"] = "blue"
    store.save()
    with django_assert_num_queries(0):
        assert SessionStore(store.session_key).load()["colour"] == "blue"


def test_a_save_with_an_end_already_past_ends_the_copy_too():
    store = SessionStore()
    store["colour"] = "green"
    store.set_expiry(3600)
    store.save()
    store.set_expiry(timezone.now() - timedelta(seconds=1))
    store.save()
    fresh = SessionStore(store.session_key)
    assert fresh.load() == {}
    assert fresh.session_key is None


def test_the_mark_is_set_again_when_the_row_s_deletion_commits(django_capture_on_commit_callbacks):
    """Other requests see the row gone only at commit, however long the deletion waited on
    a lock: the mark's ENDED_SECONDS count from then."""
    store = SessionStore()
    store["colour"] = "green"
    store.save()
    key = sessions.CACHE_KEY_PREFIX + store.session_key
    with django_capture_on_commit_callbacks(execute=True):
        store.delete()
        store._cache.delete(key)  # as if the first mark had run out while the deletion waited
    assert store._cache.get(key) == sessions.ENDED
