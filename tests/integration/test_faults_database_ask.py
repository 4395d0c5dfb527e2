"""Fault: PostgreSQL connections are killed while patients ask, through gunicorn.

The experiment of issue 13 item 5: pg_terminate_backend of the web processes'
connections, over and over, while four patients send ask forms at once. Every
answer is a page of the portal: the success page, or the branded 503 page that
says nothing was lost; never a bare "Server Error (500)". Each patient sends a
failed form again until it goes through, and each form is one question.
"""

import re
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.urls import reverse

from consultations.models import Question
from tests.db_faults import ConnectionKiller, own_backend_pid
from tests.factories import UserFactory
from tests.integration.conftest import Browser, requires_postgres_and_redis_server

pytestmark = [pytest.mark.integration, requires_postgres_and_redis_server, pytest.mark.django_db(transaction=True)]

FRIENDLY = "Nothing you sent was lost or half-saved"
BARE_500 = "Server Error (500)"
TOKEN = re.compile(r'name="submission_token" value="([0-9a-f-]{36})"')
PATIENTS = 4
FORMS_EACH = 5
TRIES = 60


def ask_until_saved(browser: Browser, specialty, number: int) -> tuple[str, list]:
    """Open the form and send it like a patient would, trying again after an error page.
    Returns the form's submission token and every error answer seen on the way."""
    errors = []
    ask = reverse("consultations:ask")
    for _ in range(TRIES):
        status, page, _ = browser.get(ask)
        if status == 200:
            break
        errors.append((status, page))
    csrf, token = Browser.CSRF_FIELD.search(page).group(1), TOKEN.search(page).group(1)
    form = {
        "csrfmiddlewaretoken": csrf,
        "submission_token": token,
        "specialty": specialty.pk,
        "title": f"Question {number} asked while the database blinks",
        "description": "Short of breath on stairs for a month, no chest pain.",
        "age": "52",
        "sex": "male",
        "consent": "on",
    }
    for _ in range(TRIES):
        status, answer, _ = browser.request("POST", ask, form)
        if status == 302 and answer.endswith("/submitted/"):
            return token, errors
        errors.append((status, answer))
        time.sleep(0.05)
    raise AssertionError(f"form {number} never went through: {[status for status, _ in errors]}")


def test_killing_database_connections_during_ask_posts_never_shows_a_bare_500(cluster, redis_server, specialty):
    """Issue 13 item 5: connections killed during form posts on gunicorn: no bare 500,
    only the friendly page, nothing lost and nothing saved twice."""
    broker = redis_server()
    web = cluster.web("web", broker.url, {"FAULT_CACHE_URL": broker.url})
    patients = [UserFactory(email=f"blip{n}@example.com") for n in range(PATIENTS)]
    browsers = [Browser(web, patient) for patient in patients]

    def one_patient(index):
        return [ask_until_saved(browsers[index], specialty, index * 100 + n) for n in range(FORMS_EACH)]

    with ConnectionKiller(own_backend_pid()) as killer, ThreadPoolExecutor(max_workers=PATIENTS) as pool:
        results = [sent for patient_results in pool.map(one_patient, range(PATIENTS)) for sent in patient_results]

    errors = [error for _, seen in results for error in seen]
    assert killer.killed > 0
    for status, body in errors:
        assert status in (500, 503), (status, body[:200])
        assert BARE_500 not in body
        assert FRIENDLY in body
    tokens = sorted(token for token, _ in results)
    saved = sorted(str(token) for token in Question.objects.values_list("submission_token", flat=True))
    assert saved == tokens, "a form was lost or saved twice"
    print(
        f"\n{killer.killed} connections killed; {len(tokens)} forms, each saved once; "
        f"{len(errors)} friendly error pages ({sum(1 for s, _ in errors if s == 503)} of them 503), no bare 500"
    )
    assert "Traceback" not in "".join(body for _, body in errors)
