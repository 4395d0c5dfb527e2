"""A database blip during the ask post: the form retries once on a fresh connection,
never makes two questions, and a database that stays away gives the friendly 503
page ("nothing was lost, try again"), never a bare "Server Error (500)"."""

import re
import uuid
from pathlib import Path
from urllib.error import HTTPError
from urllib.parse import urlencode
from urllib.request import Request, urlopen

import pytest
from django.conf import settings
from django.core import mail
from django.db import DEFAULT_DB_ALIAS, OperationalError, connection, connections
from django.test import Client
from django.urls import reverse

from consultations import services
from consultations.models import Attachment, Notification, Question
from tests.consultations.test_ask_form import ASK_URL, form_token
from tests.db_faults import ConnectionKiller, admin_connection, own_backend_pid
from tests.portal.sample_files import png_upload

pytestmark = pytest.mark.django_db(transaction=True)

FRIENDLY = "Nothing you sent was lost or half-saved"
BARE_500 = "Server Error (500)"


class FailingInserts:
    """Django's own hook around every query (`connection.execute_wrapper`): the first
    `times` INSERTs into `table` fail as a lost connection would."""

    def __init__(self, table: str, times: int):
        self.prefix = f'INSERT INTO "{table}"'
        self.remaining = times
        self.failed = 0

    def __call__(self, execute, sql, params, many, context):
        if sql.startswith(self.prefix) and self.remaining:
            self.remaining -= 1
            self.failed += 1
            raise OperationalError("server closed the connection unexpectedly")
        return execute(sql, params, many, context)


def stored_files() -> list[Path]:
    root = Path(settings.PRIVATE_MEDIA_ROOT)
    return [path for path in root.rglob("*") if path.is_file()] if root.exists() else []


@pytest.fixture
def patient_client(patient):
    client = Client(raise_request_exception=False)
    client.force_login(patient)
    return client


@pytest.fixture
def ask_post(patient_client, specialty):
    token = form_token(patient_client.get(ASK_URL).content.decode())

    def post():
        data = {
            "specialty": str(specialty.pk),
            "title": "Ringing in one ear",
            "description": "A high ringing in my left ear since a concert three days ago.",
            "age": "34",
            "sex": "female",
            "consent": "on",
            "submission_token": token,
            "attachments": [png_upload("audiogram.png")],
        }
        return patient_client.post(ASK_URL, data)

    return post


def test_a_lost_connection_while_saving_is_retried_once_and_saves_one_question(ask_post):
    """Issue 13 item 5: the connection dies after the patient's file was written;
    the whole submission is retried once and saved once, with no orphan file."""
    failing = FailingInserts("consultations_attachment", times=1)
    with connection.execute_wrapper(failing):
        response = ask_post()

    assert failing.failed == 1
    question = Question.objects.get()
    assert response.status_code == 302
    assert response.url == reverse("consultations:question_submitted", args=[question.pk])
    assert Attachment.objects.filter(question=question).count() == 1
    assert len(stored_files()) == 1, "the rolled-back attempt left the patient's file on disk"
    assert Notification.objects.filter(kind="question_received").count() == 1
    assert len(mail.outbox) == 1


def test_a_database_that_stays_away_gives_the_friendly_page_and_saves_nothing_half(ask_post):
    """Issue 13 item 5: two failures in a row: no bare 500 but the branded 503 page,
    nothing half-saved; sending the same form again once it is back saves it once."""
    failing = FailingInserts("consultations_question", times=2)
    with connection.execute_wrapper(failing):
        response = ask_post()

    assert failing.failed == 2, "the question was not retried exactly once"
    html = response.content.decode()
    assert response.status_code == 503
    assert response["Retry-After"] == "10"
    assert FRIENDLY in html and BARE_500 not in html
    assert "server closed the connection" not in html
    assert not Question.objects.exists()
    assert not Attachment.objects.exists()
    assert not stored_files()

    again = ask_post()
    assert again.status_code == 302
    assert Question.objects.count() == 1
    assert len(stored_files()) == 1


def test_a_post_that_failed_on_our_side_does_not_use_up_the_ask_limit(settings, ask_post):
    """Issue 13 item 5: the error page says "try again"; doing so must not end in
    "too many questions" (429) because our failed attempts were counted."""
    settings.RATELIMIT_ENABLED = True
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "ask": (1, 3600)}
    with connection.execute_wrapper(FailingInserts("consultations_question", times=2)):
        assert ask_post().status_code == 503
    assert ask_post().status_code == 302
    assert ask_post().status_code == 429, "the one success still counts"


def test_a_commit_whose_answer_was_lost_is_not_saved_twice(monkeypatch, patient, specialty):
    """Issue 13 item 5 with issue 11 item 10: when the connection dies after the COMMIT
    reached the database, the retry finds the saved question instead of a second one."""
    real_submit = services.submit_question
    calls = []

    def commit_then_lose_the_answer(**fields):
        calls.append(fields["submission_token"])
        question = real_submit(**fields)
        if len(calls) == 1:
            raise OperationalError("SSL connection has been closed unexpectedly")
        return question

    monkeypatch.setattr(services, "submit_question", commit_then_lose_the_answer)
    submission = services.submit_question_once(
        patient=patient,
        submission_token="1d3c5e7a-0000-4000-8000-00000000000a",
        specialty=specialty,
        title="Dry cough for three weeks",
        description="A dry cough, worse at night, no fever.",
        age=34,
        sex="female",
    )

    assert len(calls) == 2
    assert not submission.is_new
    assert Question.objects.get() == submission.question
    assert Notification.objects.count() == 1


# --- Real connections killed on PostgreSQL ---------------------------------------------------


@pytest.fixture
def postgresql():
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (set DATABASE_URL)")


class KillOwnBackend:
    """Before the first INSERT of a question, the web request's own PostgreSQL backend
    is terminated from another connection: the INSERT meets a really dead connection."""

    def __init__(self):
        self.killed_pids = []

    def __call__(self, execute, sql, params, many, context):
        if sql.startswith('INSERT INTO "consultations_question"') and not self.killed_pids:
            pid = context["connection"].connection.info.backend_pid
            with admin_connection() as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", [pid])
            self.killed_pids.append(pid)
        return execute(sql, params, many, context)


def test_a_connection_killed_during_the_post_is_retried_on_postgresql(postgresql, ask_post):
    """Issue 13 item 5: pg_terminate_backend of the web request's connection in the
    middle of the ask post: the patient still gets the success page, one question."""
    killer = KillOwnBackend()
    with connection.execute_wrapper(killer):
        response = ask_post()

    assert len(killer.killed_pids) == 1
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        assert cursor.fetchone()[0] != killer.killed_pids[0], "the retry did not use a new connection"
    question = Question.objects.get()
    assert response.status_code == 302
    assert response.url == reverse("consultations:question_submitted", args=[question.pk])
    assert len(stored_files()) == 1
    assert Notification.objects.filter(question=question).count() == 1


class Browser:
    """Just enough of a browser over urllib: cookies kept, redirects followed."""

    def __init__(self, base_url: str, cookies: dict):
        self.base_url = base_url
        self.cookies = dict(cookies)

    def open(self, path: str, form: dict | None = None) -> tuple[int, str, str]:
        headers = {"Cookie": "; ".join(f"{name}={value}" for name, value in self.cookies.items())}
        data = urlencode(form).encode() if form is not None else None
        try:
            with urlopen(Request(self.base_url + path, data=data, headers=headers), timeout=30) as answer:
                status, html, url, set_cookies = answer.status, answer.read().decode(), answer.url, answer.headers
        except HTTPError as error:
            status, html, url, set_cookies = error.code, error.read().decode(), error.url, error.headers
        for header in set_cookies.get_all("Set-Cookie") or []:
            name, _, value = header.split(";", 1)[0].partition("=")
            self.cookies[name.strip()] = value.strip()
        return status, html, url

    def until(self, status: int, path: str, form: dict | None = None, tries: int = 100):
        """Like a patient pressing "try again": the failed answers on the way, and the good one."""
        failures = []
        for _ in range(tries):
            answer = self.open(path, form)
            if answer[0] == status:
                return answer, failures
            failures.append(answer)
        raise AssertionError(f"still failing after {tries} tries: {[failure[0] for failure in failures]}")


def test_killing_connections_during_form_posts_never_shows_a_bare_500(postgresql, live_server, patient, specialty):
    """Issue 13 item 5: a live server while connections are killed all the time. Every
    answer is a page of the portal (success, or the friendly 503 saying nothing was
    lost), never a bare "Server Error (500)"; each form, sent again until it goes
    through, is one question."""
    forms = 8
    session = Client()
    session.force_login(patient)
    browser = Browser(
        live_server.url, {settings.SESSION_COOKIE_NAME: session.cookies[settings.SESSION_COOKIE_NAME].value}
    )
    failures, tokens = [], []
    with ConnectionKiller(own_backend_pid()) as killer:
        for number in range(forms):
            (_, html, _), failed = browser.until(200, ASK_URL)
            failures += failed
            token = form_token(html)
            form = {
                "csrfmiddlewaretoken": re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1),
                "submission_token": token,
                "specialty": specialty.pk,
                "title": f"Question {number} sent during an outage",
                "description": "Dizzy when I stand up quickly, for a week.",
                "age": 34,
                "sex": "female",
                "consent": "on",
            }
            (_, _, url), failed = browser.until(200, ASK_URL, form)
            failures += failed
            assert url.endswith("/submitted/"), url
            tokens.append(token)

    assert killer.killed > 0
    for status, html, _ in failures:
        assert status in (500, 503), status
        assert BARE_500 not in html
        assert FRIENDLY in html
    saved = Question.objects.filter(patient=patient).values_list("submission_token", flat=True)
    assert sorted(str(token) for token in saved) == sorted(tokens), "a form was lost or saved twice"
    print(f"{killer.killed} connections killed, {len(failures)} friendly error pages, {forms} questions saved once")


def _health_checks(monkeypatch) -> list[int]:
    """Django's connection health check (CONN_HEALTH_CHECKS: a `SELECT 1` before a
    request's first query), counted."""
    checks = []
    wrapper = type(connections[DEFAULT_DB_ALIAS])
    real = wrapper.is_usable
    monkeypatch.setattr(wrapper, "is_usable", lambda self: checks.append(1) or real(self))
    return checks


def test_the_submission_is_its_connections_health_check(postgresql, patient, specialty, monkeypatch):
    """Issue 17: no `SELECT 1` round trip before the ask post's transaction. A connection
    that died while idle fails the submission's first statement instead, a transient
    error that submit_question_once retries once on a new connection (below)."""
    own_backend_pid()  # the connection is open, as a web process's is between requests
    assert connection.health_check_enabled
    connection.health_check_done = False  # as at the start of every request
    checks = _health_checks(monkeypatch)
    submission = services.submit_question_once(
        patient=patient,
        submission_token=uuid.uuid4(),
        specialty=specialty,
        title="Ringing in one ear",
        description="Since a concert three days ago.",
        age=34,
        sex="female",
    )
    assert submission.is_new and checks == []


def test_a_connection_that_died_between_requests_is_replaced_by_the_submission(postgresql, ask_post):
    """Issue 17: the connection was terminated while idle (a database restart, an idle
    timeout); the post fails its first statement, retries once on a new connection and
    saves one question."""
    killed = own_backend_pid()
    with admin_connection() as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [killed])
    connection.health_check_done = False
    response = ask_post()

    question = Question.objects.get()
    assert response.status_code == 302
    assert response.url == reverse("consultations:question_submitted", args=[question.pk])
    assert own_backend_pid() != killed
    assert Notification.objects.filter(question=question).count() == 1
