"""The live queue's JSON view (issue 14, a live workbench): the queue's own rows, filters
and access rule; a 304 when nothing changed; the same cost for 5 rows as for 50."""

import json
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from consultations import sla
from consultations.access import clinical_staff_group
from tests.consultations.test_doctor_queue import answered, ask
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

LIVE = reverse("doctor_admin:consultations_question_live")
QUEUE = reverse("doctor_admin:consultations_question_changelist")
DOCTOR_LOGIN = reverse("doctor_admin:login")


@pytest.fixture
def signed_in(client, doctor):
    client.force_login(doctor.user)
    return client


def poll(client, query="", **headers):
    response = client.get(LIVE + query, headers=headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/json"
    return response, json.loads(response.content)


def ids(body):
    return [row["id"] for row in body["rows"]]


# --- What it answers ------------------------------------------------------------------------


def test_rows_are_the_queue_in_the_queue_order_with_only_what_the_row_shows(
    signed_in, specialty, other_specialty, doctor
):
    later = ask(specialty, hours_ago=0.5, title="Later")
    late = ask(specialty, hours_ago=3.5, title="Sooner", claimed_by=doctor)
    urgent = ask(specialty, hours_ago=0, title="Urgent one", is_urgent=True)
    answered(specialty, title="Answered")
    ask(other_specialty, hours_ago=3, title="Heart question")

    _, body = poll(signed_in)

    assert ids(body) == [urgent.pk, late.pk, later.pk]
    first = body["rows"][1]
    assert set(first) == {
        "id", "title", "follow_up", "state", "state_label", "warn_at", "due_at", "urgent", "claimed", "status",
        "sig", "html",
    }  # fmt: skip
    assert first["title"] == "Sooner"
    assert first["state"] == sla.AT_RISK
    assert first["state_label"] == "At risk"
    assert first["claimed"] == "you"
    assert first["urgent"] is False
    assert first["due_at"] == late.clock_due_at.isoformat()
    assert first["warn_at"] == late.clock_warn_at.isoformat()
    assert body["rows"][0]["urgent"] is True
    assert body["counts"] == {
        "on_track": 2, "at_risk": 1, "breached": 0, "paused": 0, "total": 3, "unclaimed": 2, "follow_ups": 0,
        "urgent": 1, "mine": 1,
    }  # fmt: skip
    # The row as the queue renders it, and nothing about the patient but age and sex.
    html = first["html"]
    assert html.startswith(f'<tr data-question-id="{late.pk}">')
    assert "Sooner" in html and "34 · Female" in html
    assert late.patient.email not in html and late.patient.full_name not in html
    assert f'data-due-at="{late.clock_due_at.isoformat()}"' in html
    assert reverse("doctor_admin:consultations_question_release", args=[late.pk]) in html


def test_the_queue_page_carries_the_poll_url_interval_and_due_times(signed_in, specialty, settings):
    settings.WORKBENCH_POLL_SECONDS = 7
    question = ask(specialty, hours_ago=1)
    html = signed_in.get(QUEUE).content.decode()
    assert f'data-live-url="{LIVE}" data-poll-seconds="7" data-server-now="' in html
    assert f'data-question="{question.pk}"' in html
    assert f'data-due-at="{question.clock_due_at.isoformat()}"' in html
    assert 'aria-live="polite"' in html
    assert "data-live-empty" not in html


def test_an_empty_queue_has_a_hidden_table_for_new_rows(signed_in):
    html = signed_in.get(QUEUE).content.decode()
    assert '<div class="results" data-live-empty hidden>' in html
    assert html.count('id="result_list"') == 1


def test_paused_and_answered_rows_have_no_countdown(signed_in, specialty, doctor):
    done = answered(specialty)
    _, body = poll(signed_in, "?show=answered")
    assert ids(body) == [done.pk]
    assert body["rows"][0]["due_at"] is None
    assert "data-due-at" not in body["rows"][0]["html"]


# --- Filters: the queue's four, nothing else ------------------------------------------------


def test_the_queue_filters_apply(signed_in, specialty, doctor, senior_doctor):
    free = ask(specialty, hours_ago=1)
    mine = ask(specialty, hours_ago=2, claimed_by=doctor)
    theirs = ask(specialty, hours_ago=0.5, claimed_by=senior_doctor)
    breached = ask(specialty, hours_ago=5)

    assert ids(poll(signed_in, "?claim=unclaimed")[1]) == [breached.pk, free.pk]
    assert ids(poll(signed_in, "?claim=mine")[1]) == [mine.pk]
    assert ids(poll(signed_in, "?claim=others")[1]) == [theirs.pk]
    assert ids(poll(signed_in, "?sla=breached")[1]) == [breached.pk]
    assert ids(poll(signed_in, f"?specialty={specialty.pk}&sla=on_track")[1]) == [mine.pk, free.pk, theirs.pk]


@pytest.mark.parametrize(
    "query",
    ["?q=rash", "?p=2", "?o=1", "?patient__email=a@example.com", "?rating_comment__startswith=a", "?e=1"],
)
def test_anything_but_the_queue_filters_is_refused(signed_in, specialty, query):
    ask(specialty)
    response = signed_in.get(LIVE + query)
    assert response.status_code == 400
    assert json.loads(response.content)["error"].startswith("Unknown parameter")


def test_only_get(signed_in):
    assert signed_in.post(LIVE).status_code == 405


# --- Who may poll ------------------------------------------------------------------------------


def test_a_doctor_sees_only_what_their_queue_shows(client, specialty, other_specialty, other_doctor, doctor):
    mine = ask(specialty)
    handed = ask(other_specialty, claimed_by=doctor)
    client.force_login(other_doctor.user)
    assert ids(poll(client)[1]) == [handed.pk]
    client.force_login(doctor.user)
    assert sorted(ids(poll(client)[1])) == sorted([mine.pk, handed.pk])


def test_clinical_staff_see_every_specialty(client, specialty, other_specialty):
    one, two = ask(specialty, hours_ago=1), ask(other_specialty, hours_ago=2)
    lead = UserFactory(is_staff=True)
    lead.groups.add(clinical_staff_group())
    client.force_login(lead)
    assert ids(poll(client)[1]) == [two.pk, one.pk]


@pytest.mark.parametrize("who", ["anonymous", "patient", "unverified_doctor", "bare_staff", "editor"])
def test_no_workbench_no_rows(client, who, specialty, patient, unverified_doctor):
    """Refused at the workbench's door like the queue: sent to its sign-in, no JSON."""
    ask(specialty)
    users = {
        "patient": patient,
        "unverified_doctor": unverified_doctor.user,
        "bare_staff": UserFactory(is_staff=True),
        "editor": UserFactory(is_staff=True),
    }
    if who == "editor":
        users["editor"].user_permissions.add(*Permission.objects.filter(content_type__app_label="articles"))
    if who != "anonymous":
        client.force_login(users[who])
    response = client.get(LIVE)
    assert response.status_code == 302
    assert response["Location"].startswith(DOCTOR_LOGIN)
    assert b"rows" not in response.content


def test_a_doctor_whose_second_factor_is_pending_gets_no_rows(client, specialty, doctor, settings):
    settings.REQUIRE_2FA = True
    ask(specialty)
    client.force_login(doctor.user)
    response = client.get(LIVE)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/2fa/")
    assert b"rows" not in response.content


# --- Cost ---------------------------------------------------------------------------------------


def test_an_unchanged_queue_answers_304_and_a_new_question_changes_it(signed_in, specialty):
    ask(specialty, hours_ago=1)
    first, body = poll(signed_in)
    tag = first["ETag"]
    assert tag.startswith('"') and len(body["rows"]) == 1

    again = signed_in.get(LIVE, headers={"If-None-Match": tag})
    assert again.status_code == 304
    assert again.content == b""
    assert again["ETag"] == tag
    # A proxy that gzips weakens the tag; the rows are still the same.
    assert signed_in.get(LIVE, headers={"If-None-Match": f"W/{tag}"}).status_code == 304

    new = ask(specialty, hours_ago=0)
    changed = signed_in.get(LIVE, headers={"If-None-Match": tag})
    assert changed.status_code == 200
    body = json.loads(changed.content)
    assert changed["ETag"] != tag
    assert new.pk in ids(body)
    # The tag is per filter: the same rows under another filter are not a 304 of this one.
    assert signed_in.get(LIVE + "?claim=unclaimed", headers={"If-None-Match": tag}).status_code == 200


def test_crossing_into_at_risk_changes_the_tag(signed_in, specialty):
    question = ask(specialty, hours_ago=2.9)
    tag = poll(signed_in)[0]["ETag"]
    type(question).objects.filter(pk=question.pk).update(clock_warn_at=timezone.now() - timedelta(seconds=1))
    response, body = poll(signed_in)
    assert response["ETag"] != tag
    assert body["rows"][0]["state"] == sla.AT_RISK


def _poll_queries(client, **headers):
    with CaptureQueriesContext(connection) as captured:
        response = client.get(LIVE, headers=headers)
    return response, len(captured)


def test_the_poll_costs_the_same_number_of_queries_for_5_and_50_rows(signed_in, specialty, doctor, senior_doctor):
    def fill(count):
        for n in range(count):
            ask(
                specialty,
                hours_ago=n % 6,
                is_urgent=n % 7 == 0,
                claimed_by=[None, doctor, senior_doctor][n % 3],
                patient=UserFactory(),
            )

    fill(5)
    # The session's idle end is written at most once a minute: the first request pays for it.
    _poll_queries(signed_in)
    response, five = _poll_queries(signed_in)
    assert len(json.loads(response.content)["rows"]) == 5
    _, five_unchanged = _poll_queries(signed_in, **{"If-None-Match": response["ETag"]})
    fill(45)
    response, fifty = _poll_queries(signed_in)
    assert len(json.loads(response.content)["rows"]) == 50
    not_modified, fifty_unchanged = _poll_queries(signed_in, **{"If-None-Match": response["ETag"]})
    assert not_modified.status_code == 304
    assert five == fifty
    assert five_unchanged == fifty_unchanged <= five
    assert fifty <= 12, fifty
