"""A signed-in patient's "my questions" from the process's kept copy (consultations/early_list.py,
issue 17). The copy is byte for byte the normal page (but for a freshly masked CSRF token);
it goes only to the patient it was made for, and any change the page would show, made by
any code path (signals or not), or anything the normal path must decide for the request,
makes the next page a normal one."""

import re
from datetime import timedelta

import pytest
import time_machine
from django.contrib import messages
from django.contrib.auth import HASH_SESSION_KEY
from django.contrib.messages.storage.base import Message
from django.contrib.messages.storage.cookie import CookieStorage
from django.contrib.messages.storage.session import SessionStorage
from django.core.exceptions import MiddlewareNotUsed
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import _unmask_cipher_token
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from consultations import early_list, services
from consultations.models import Question, Specialty
from consultations.patient_list import PER_PAGE
from tests.consultations.test_my_questions_round_trips import _credit
from tests.factories import QuestionFactory, UserFactory

pytestmark = [
    pytest.mark.django_db,
    # On other databases the early page turns itself off (early_list: its check is one
    # PostgreSQL statement) and the list is served the normal way, which other tests cover.
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the early page is PostgreSQL's"),
]
URL = reverse("consultations:my_questions")
TOKEN = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def early(response) -> bool:
    """Answered from the kept copy: a page no template was rendered for."""
    return response.status_code == 200 and not response.templates


def warmed(client) -> None:
    """The patient's page is kept: the first visit pushes the session's idle end (a
    session write: not kept), the second is kept, the third comes from the copy."""
    client.get(URL)
    client.get(URL)
    assert early(client.get(URL))


def without_token(html: str) -> str:
    return TOKEN.sub('name="csrfmiddlewaretoken" value="-"', html)


@pytest.fixture
def asked(patient, specialty):
    return [QuestionFactory(patient=patient, specialty=specialty, title=f"Rash number {n}") for n in range(3)]


@pytest.fixture
def signed_in(client, patient, asked):
    client.force_login(patient)
    return client


def test_the_kept_copy_is_the_normal_page_with_a_fresh_token(signed_in):
    signed_in.get(URL)
    normal = signed_in.get(URL)
    assert normal.templates  # rendered, and kept
    kept = signed_in.get(URL)
    again = signed_in.get(URL)
    assert early(kept) and early(again)
    assert without_token(kept.content.decode()) == without_token(normal.content.decode())
    assert dict(kept.headers) == dict(normal.headers)
    tokens = {TOKEN.search(r.content.decode()).group(1) for r in (normal, kept, again)}
    assert len(tokens) == 3  # masked anew for every answer
    secret = signed_in.cookies["csrftoken"].value
    assert {_unmask_cipher_token(token) for token in tokens} == {secret}
    assert kept.cookies["csrftoken"].value == secret  # renewed, as the normal path does


def test_the_kept_pages_token_signs_the_patient_out(patient, asked):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(patient)
    warmed(browser)
    token = TOKEN.search(browser.get(URL).content.decode()).group(1)
    assert browser.post(reverse("logout"), {"csrfmiddlewaretoken": token}).status_code == 302
    assert browser.get(URL).status_code == 302


def test_another_patient_never_gets_the_copy(signed_in, other_patient, specialty):
    QuestionFactory(patient=other_patient, specialty=specialty, title="Otto's cough")
    warmed(signed_in)
    signed_in.force_login(other_patient)  # the same process, another session
    for _ in range(3):
        html = signed_in.get(URL).content.decode()
        assert "Otto&#x27;s cough" in html and "Rash number" not in html
    assert early(signed_in.get(URL))
    assert "Rash number" not in signed_in.get(URL).content.decode()


def test_anonymous_and_signed_out_sessions_are_sent_to_sign_in(signed_in, patient):
    warmed(signed_in)
    old_cookie = signed_in.cookies["sessionid"].value
    assert Client().get(URL).status_code == 302
    signed_in.post(reverse("logout"))
    assert signed_in.get(URL).status_code == 302
    stolen = Client()
    stolen.cookies["sessionid"] = old_cookie
    assert stolen.get(URL).status_code == 302


@pytest.mark.parametrize("change", ["password", "deactivated"])
def test_a_changed_account_ends_the_early_page(signed_in, patient, change):
    warmed(signed_in)
    if change == "password":
        patient.set_password("a-new-long-passphrase")
    else:
        patient.is_active = False
    patient.save()
    response = signed_in.get(URL)
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_a_session_hashed_with_an_old_key_goes_the_normal_way(signed_in):
    warmed(signed_in)
    session = signed_in.session
    session[HASH_SESSION_KEY] = "0" * 64
    session.save()
    assert signed_in.get(URL).status_code == 302  # the normal path flushes it


def test_becoming_staff_needs_the_normal_path(signed_in, patient, settings):
    settings.REQUIRE_2FA = True
    warmed(signed_in)
    patient.is_staff = True
    patient.save()
    response = signed_in.get(URL)
    assert response.status_code == 302 and "/accounts/2fa/" in response["Location"]


@pytest.mark.parametrize(
    "change, shown",
    [
        ("new question", "Swollen ankle"),
        ("title by update()", "Retitled without a signal"),
        ("specialty renamed by update()", "Skin and hair"),
        ("breach marked by update()", "late since"),
        ("credit", "When we missed our guarantee"),
        ("name", "Paulina"),
        ("time zone", "JST"),
    ],
)
def test_any_change_the_page_shows_is_shown_at_once(signed_in, patient, specialty, asked, change, shown):
    warmed(signed_in)
    assert shown not in signed_in.get(URL).content.decode()
    if change == "new question":
        QuestionFactory(patient=patient, specialty=specialty, title="Swollen ankle")
    elif change == "title by update()":
        Question.objects.filter(pk=asked[0].pk).update(title="Retitled without a signal")
    elif change == "specialty renamed by update()":
        Specialty.objects.filter(pk=specialty.pk).update(name="Skin and hair")
    elif change == "breach marked by update()":
        due = timezone.now() - timedelta(minutes=30)
        Question.objects.filter(pk=asked[0].pk).update(clock_due_at=due, due_at=due, breached_at=timezone.now())
    elif change == "credit":
        _credit(asked[0])
    elif change == "name":
        patient.full_name = "Paulina Patient"
        patient.save()
    else:
        patient.time_zone = "Asia/Tokyo"
        patient.save()
    assert shown in signed_in.get(URL).content.decode()


def test_an_answer_is_shown_at_once(signed_in, asked, doctor):
    warmed(signed_in)
    services.post_answer(asked[1], doctor, "Use a mild emollient twice a day.")
    html = signed_in.get(URL).content.decode()
    assert html.count("status-answered") == 1


def test_the_countdown_text_is_never_stale(signed_in, asked):
    Question.objects.filter(pk=asked[0].pk).update(
        due_at=timezone.now() + timedelta(minutes=30), clock_due_at=timezone.now() + timedelta(minutes=30)
    )
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        warmed(signed_in)
        before = re.findall(r"answer due in [^<]+", signed_in.get(URL).content.decode())
        traveller.shift(timedelta(seconds=2))
        after = re.findall(r"answer due in [^<]+", signed_in.get(URL).content.decode())
    assert before != after and any(text.startswith("answer due in 29 min") for text in after)


def test_a_waiting_message_is_shown(signed_in):
    warmed(signed_in)
    cookie = CookieStorage(HttpRequest())._encode([Message(messages.SUCCESS, "Your details were saved.")])
    signed_in.cookies["messages"] = cookie
    response = signed_in.get(URL)
    assert not early(response) and "Your details were saved." in response.content.decode()
    assert not early(signed_in.get(URL))  # the message was shown: its cookie is deleted, not kept


def test_messages_kept_in_the_session_go_the_normal_way(signed_in):
    warmed(signed_in)
    session = signed_in.session
    request = HttpRequest()
    request.session = session
    storage = SessionStorage(request)
    storage.add(messages.SUCCESS, "Your details were saved.")
    storage.update(HttpResponse())
    session.save()
    assert not early(signed_in.get(URL))


def test_the_idle_end_is_still_pushed_forward(signed_in):
    warmed(signed_in)
    with time_machine.travel(timezone.now() + timedelta(minutes=2)):
        response = signed_in.get(URL)
        assert not early(response)
        assert "sessionid" in response.cookies  # the session was written with its new end
        signed_in.get(URL)  # kept again, now that nothing is due
        assert early(signed_in.get(URL))


@pytest.mark.parametrize(
    "request_kwargs",
    [{"QUERY_STRING": "page=1"}, {"HTTP_AUTHORIZATION": "Basic eDp5"}, {"HTTP_COOKIE_EXTRA": True}],
)
def test_other_requests_go_the_normal_way(signed_in, request_kwargs):
    warmed(signed_in)
    if request_kwargs.pop("HTTP_COOKIE_EXTRA", False):
        signed_in.cookies["tracking"] = "1"
    assert not early(signed_in.get(URL, **request_kwargs))
    assert not early(signed_in.head(URL))


def test_patients_with_more_than_one_page_or_none_go_the_normal_way(client, patient, other_patient, specialty):
    for n in range(PER_PAGE + 1):
        QuestionFactory(patient=patient, specialty=specialty, title=f"Question {n}")
    client.force_login(patient)
    assert not any(early(client.get(URL)) for _ in range(3))
    client.force_login(other_patient)
    assert not any(early(client.get(URL)) for _ in range(3))


def test_a_page_changed_while_it_was_made_is_not_kept(signed_in, patient, asked, monkeypatch):
    signed_in.get(URL)
    real = early_list.page_state
    calls = []

    def changing(*args):
        calls.append(1)
        if len(calls) == 2:  # read again after the page was made: an answer came in between
            Question.objects.filter(pk=asked[0].pk).update(title="Changed during the page")
        return real(*args)

    monkeypatch.setattr(early_list, "page_state", changing)
    signed_in.get(URL)
    response = signed_in.get(URL)
    assert not early(response) and "Changed during the page" in response.content.decode()


def test_the_early_page_turns_itself_off_before_an_unknown_layer(settings, caplog):
    own = "consultations.early_list.EarlyMyQuestionsMiddleware"
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, "some.new.LayerMiddleware"]
    with pytest.raises(MiddlewareNotUsed):
        early_list.EarlyMyQuestionsMiddleware(lambda request: None)
    assert "some.new.LayerMiddleware" in caplog.text
    settings.MIDDLEWARE = [name for name in settings.MIDDLEWARE if name != own]
    with pytest.raises(MiddlewareNotUsed):
        early_list.EarlyMyQuestionsMiddleware(lambda request: None)


def test_a_foreign_token_or_a_new_cookie_is_never_kept():
    secret = "a" * 32
    body = b'<input name="csrfmiddlewaretoken" value="' + b"c" * 32 + b"d" * 32 + b'">'
    assert early_list.split_at_token(body, secret) is None
    assert early_list.split_at_token(b"<p>no form</p>", secret) == (b"<p>no form</p>",)
    response = HttpResponse("page")
    response.set_cookie("sessionid", "x")
    assert early_list.kept_headers(response) is None
    response = HttpResponse("page")
    response["Content-Security-Policy"] = "script-src 'nonce-abc'"
    assert early_list.kept_headers(response) is None


def test_the_store_keeps_only_the_latest_users_pages():
    pages = early_list.KeptPages(limit=2)
    for user_id in (1, 2, 3):
        pages.put(user_id, early_list.KeptPage((user_id,), (b"page",), ()))
    assert pages.get(1, (1,)) is None
    assert pages.get(3, (3,)) is not None
    assert pages.get(3, (4,)) is None  # another state: not this page


def test_a_doctor_is_never_answered_early(client, doctor, specialty):
    QuestionFactory(patient=doctor.user, specialty=specialty)
    client.force_login(doctor.user)
    assert not any(early(client.get(URL)) for _ in range(3))


def test_a_new_patient_signs_in_and_sees_their_own_page(client, asked):
    newcomer = UserFactory(email="new.patient@example.com")
    client.force_login(newcomer)
    assert "Rash number" not in client.get(URL).content.decode()


def test_the_first_page_digest_follows_every_listed_value(patient, specialty, other_specialty, asked):
    from consultations.patient_list import LISTED_FIELDS, _first_page_query, first_page
    from consultations.views import FIXED_CLOCK_STATUSES

    page = first_page(patient, FIXED_CLOCK_STATUSES)
    assert page == first_page(patient, FIXED_CLOCK_STATUSES)
    assert page.count == 3 and not page.has_credit
    status = LISTED_FIELDS.index("status")
    orm_moving = [row[:-1] for row in _first_page_query(patient) if row[status] not in FIXED_CLOCK_STATUSES]
    assert sorted(page.moving) == sorted(orm_moving) and page.moving
    later = timezone.now() + timedelta(minutes=7)
    changes = [
        {"title": "Another title"},
        {"is_urgent": True},
        {"status": "answered", "first_answered_at": later},
        {"clock_paused_at": later},
        {"due_at": later},
        {"clock_due_at": later},
        {"breached_at": later},
        {"submitted_at": later},
        {"specialty": other_specialty},
    ]
    digests = {page.digest}
    for change in changes:
        Question.objects.filter(pk=asked[0].pk).update(**change)
        digests.add(first_page(patient, FIXED_CLOCK_STATUSES).digest)
    assert len(digests) == len(changes) + 1
    _credit(asked[1])
    assert first_page(patient, FIXED_CLOCK_STATUSES).has_credit


def test_an_ended_session_is_sent_to_sign_in(signed_in):
    warmed(signed_in)
    with time_machine.travel(timezone.now() + timedelta(days=30)):
        assert signed_in.get(URL).status_code == 302


def test_a_remembered_session_ends_at_its_end(signed_in, asked):
    from portal import session_policy

    # Answered questions: a page nothing but the session's end could change.
    Question.objects.filter(pk__in=[q.pk for q in asked]).update(status="answered", first_answered_at=timezone.now())
    session = signed_in.session
    session[session_policy.REMEMBERED_KEY] = True
    session.set_expiry(timezone.now() + timedelta(days=1))
    session.save()
    warmed(signed_in)  # a remembered session is never touched: only its end can stop the copy
    with time_machine.travel(timezone.now() + timedelta(days=1, minutes=1)):
        assert signed_in.get(URL).status_code == 302


def test_without_prepared_statements_the_copy_is_checked_the_same_way(signed_in, asked, settings):
    settings.DB_PREPARED_STATEMENTS = False  # behind a pooler that cannot follow them
    warmed(signed_in)
    Question.objects.filter(pk=asked[0].pk).update(title="Seen without preparing")
    assert "Seen without preparing" in signed_in.get(URL).content.decode()


def _prepared_statements() -> list[str]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall()]


def test_the_statement_is_prepared_on_the_connection_and_nothing_else_is(signed_in, settings):
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("prepared statements are PostgreSQL's")
    settings.DB_PREPARED_STATEMENTS = True
    warmed(signed_in)
    assert early(signed_in.get(URL))
    prepared = _prepared_statements()
    # Django opens connections with psycopg's prepare_threshold None, which ignores
    # prepare=True: the statement was planned anew on every request.
    assert len(prepared) == 1 and '"django_session"' in prepared[0]
    assert connection.connection.prepare_threshold is None  # other queries: never prepared
    Question.objects.count()
    assert len(_prepared_statements()) == 1


def test_without_prepared_statements_nothing_is_prepared(signed_in, settings):
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("prepared statements are PostgreSQL's")
    settings.DB_PREPARED_STATEMENTS = False
    warmed(signed_in)
    assert _prepared_statements() == []


def test_the_csrf_characters_are_drawn_uniformly(monkeypatch):
    from django.middleware.csrf import CSRF_ALLOWED_CHARS

    # Every byte value once: each character stands for exactly four of them, the rest are dropped.
    monkeypatch.setattr(early_list.os, "urandom", lambda n: bytes(range(256))[:n])
    drawn = early_list.random_csrf_chars(248)
    assert sorted(drawn) == sorted(CSRF_ALLOWED_CHARS * 4)


def test_the_csrf_characters_come_from_the_system_and_differ():
    from django.middleware.csrf import CSRF_ALLOWED_CHARS

    drawn = [early_list.random_csrf_chars(32) for _ in range(300)]
    assert len(set(drawn)) == 300 and all(len(chars) == 32 for chars in drawn)
    assert set("".join(drawn)) == set(CSRF_ALLOWED_CHARS)


def test_the_token_is_masked_as_django_masks_it(monkeypatch):
    from django.middleware import csrf

    for _ in range(50):
        secret, mask = csrf._get_new_csrf_string(), csrf._get_new_csrf_string()
        monkeypatch.setattr(csrf, "_get_new_csrf_string", lambda mask=mask: mask)
        assert early_list.masked_csrf_token(secret, mask) == csrf._mask_cipher_secret(secret)
        monkeypatch.undo()


@pytest.mark.parametrize("cookie", [None, "k" * 32, "bad!"])
def test_the_early_token_marks_the_request_as_get_token_does(rf, settings, cookie):
    from django.middleware import csrf

    def request():
        made = rf.get(URL)
        if cookie is not None:
            made.COOKIES[settings.CSRF_COOKIE_NAME] = cookie
        csrf.CsrfViewMiddleware(lambda r: None).process_request(made)
        return made

    ours, django = request(), request()
    token, their_token = early_list.csrf_token(ours), csrf.get_token(django)
    assert ours.META.keys() == django.META.keys() and ours.META["CSRF_COOKIE_NEEDS_UPDATE"] is True
    if cookie == "k" * 32:
        assert ours.META["CSRF_COOKIE"] == django.META["CSRF_COOKIE"] == cookie
    csrf._check_token_format(ours.META["CSRF_COOKIE"])
    csrf._check_token_format(token)
    assert len(token) == len(their_token) and csrf._unmask_cipher_token(token) == ours.META["CSRF_COOKIE"]


def test_without_a_csrf_cookie_each_early_page_makes_a_secret_its_form_accepts(patient, asked):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(patient)
    warmed(browser)
    del browser.cookies["csrftoken"]
    normal = browser.get(URL, {"page": "1"})
    assert not early(normal)
    secrets = set()
    for _ in range(3):
        del browser.cookies["csrftoken"]  # as the bench's client: no CSRF cookie
        response = browser.get(URL)
        assert early(response)
        secret = response.cookies["csrftoken"].value
        assert _unmask_cipher_token(TOKEN.search(response.content.decode()).group(1)) == secret
        secrets.add(secret)
    assert len(secrets) == 3
    attributes = [
        {name: value for name, value in r.cookies["csrftoken"].items() if name != "expires"} for r in (normal, response)
    ]
    assert attributes[0] == attributes[1] and attributes[0]["max-age"]
    assert dict(normal.headers).keys() == dict(response.headers).keys()
    token = TOKEN.search(response.content.decode()).group(1)
    assert browser.post(reverse("logout"), {"csrfmiddlewaretoken": token}).status_code == 302


def test_the_statement_reads_the_users_row_as_the_orm_does(signed_in, patient, rf):
    from portal.models import User

    warmed(signed_in)
    state = early_list.page_state(rf.get(URL), signed_in.cookies["sessionid"].value, patient.pk)
    assert state is not None and state[0] == patient.pk
    assert state[1] == early_list.user_state(User.objects.get(pk=patient.pk))
    assert [clock[1] for clock in state[-1]] == ["running"] * 3
    Question.objects.filter(patient=patient).update(status="answered", first_answered_at=timezone.now())
    assert early_list.page_state(rf.get(URL), signed_in.cookies["sessionid"].value, patient.pk)[-1] == ()  # none moves


@pytest.mark.django_db(transaction=True)
def test_a_statement_lost_on_the_server_costs_one_normal_page(signed_in, settings, caplog):
    from django.db import connection

    settings.DB_PREPARED_STATEMENTS = True
    warmed(signed_in)
    connection.connection.pgconn.exec_(b"DEALLOCATE ALL")  # behind psycopg's back, as a pooler might
    response = signed_in.get(URL)
    assert response.status_code == 200 and not early(response) and "Rash number" in response.content.decode()
    assert "prepared statement is gone" in caplog.text
    signed_in.get(URL)
    assert early(signed_in.get(URL))  # a new connection, the statement prepared again
