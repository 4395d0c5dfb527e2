"""Issue 14, "patients hear the truth": when a question breaches, the sweep records one
breach credit and queues one apology to the patient, in the breach's own transaction
(the row-by-row fallback too); the patient's pages say what happened instead of the
failed promise; staff see the credits in the CSV export."""

import csv
import io
from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest
import time_machine
from django.db import IntegrityError
from django.urls import reverse

from consultations import credits, dashboard, services, sweep
from consultations.models import BreachCredit, Escalation, EscalationLevel, Notification, Question
from tests.consultations.sweep_support import breached_by, sla_staff_member
from tests.factories import QuestionFactory, UserFactory

pytestmark = pytest.mark.django_db

# 14:00 UTC: 15:00 CET in Paris. A normal question sent at 10:00 is due at 14:00.
NOW = datetime(2026, 12, 1, 14, 7, tzinfo=UTC)
DUE = datetime(2026, 12, 1, 14, 0, tzinfo=UTC)


@pytest.fixture
def paris_patient(db):
    return UserFactory(email="paula@example.com", time_zone="Europe/Paris")


@pytest.fixture
def late_question(specialty, paris_patient):
    """Due at 14:00 UTC, seven minutes before NOW; warned in time, not yet breached."""
    return QuestionFactory(
        patient=paris_patient,
        specialty=specialty,
        title="Zqx itchy rash",
        submitted_at=DUE - timedelta(hours=4),
        is_urgent=False,
        warned_at=DUE - timedelta(hours=1),
    )


def apologies(question=None):
    rows = Notification.objects.filter(kind=credits.APOLOGY_KIND)
    return rows.filter(question=question) if question is not None else rows


# --- The sweep writes them, once ---------------------------------------------------------------


def test_a_breach_records_one_credit_and_one_apology_in_the_patients_time_zone(
    late_question, paris_patient, senior_doctor, settings
):
    settings.SLA_BREACH_CREDIT = "free_question"
    sla_staff_member()

    result = sweep.run_sweep(now=NOW)
    sweep.run_sweep(now=NOW + timedelta(minutes=1))
    sweep.run_sweep(now=NOW + timedelta(hours=5))  # the lead escalation: no second credit

    assert result.breached == 1
    credit = BreachCredit.objects.get()
    assert (credit.patient, credit.question, credit.kind) == (paris_patient, late_question, "free_question")
    assert (credit.clock_due_at, credit.breached_at, credit.minutes_late, credit.is_follow_up) == (DUE, NOW, 7, False)
    assert credit.sweep_id == result.run_id
    # Same transaction, same clock as the staff escalation.
    escalation = Escalation.objects.get(level=EscalationLevel.BREACHED)
    assert (escalation.question, escalation.clock_due_at, escalation.sweep_id) == (late_question, DUE, result.run_id)

    apology = apologies().get()
    assert (apology.to_email, apology.recipient, apology.question) == (
        "paula@example.com",
        paris_patient,
        late_question,
    )
    assert apology.subject == f"We are sorry: your question #{late_question.pk} was not answered in time"
    assert apology.dedupe_key == f"breach_apology:{late_question.pk}:2026-12-01T14:00:00+00:00"
    assert "by Tuesday 1 December 2026, 15:00 CET, and that time has passed" in apology.body
    assert "a senior doctor and our clinic team have been alerted" in apology.body
    assert "stays at the top of the doctors' queue" in apology.body
    assert "call your local emergency number now" in apology.body
    assert "we have recorded a free question for you" in apology.body
    assert f"Your question: {settings.SITE_URL}{late_question.get_absolute_url()}\n" in apology.body
    # The patient's words stay behind the login.
    assert "Zqx" not in apology.subject + apology.body


@pytest.mark.parametrize(
    ("kind", "line"),
    [
        ("refund", "we have recorded a refund of this question's fee for you"),
        ("none", None),
    ],
)
def test_the_credit_kind_comes_from_the_setting(late_question, settings, kind, line):
    settings.SLA_BREACH_CREDIT = kind

    sweep.run_sweep(now=NOW)

    assert BreachCredit.objects.get().kind == kind
    body = apologies().get().body
    if line:
        assert line in body
    else:
        assert "What you are owed" not in body


def test_an_inactive_patient_gets_the_credit_but_no_email(late_question, paris_patient):
    paris_patient.is_active = False
    paris_patient.save()

    sweep.run_sweep(now=NOW)

    assert BreachCredit.objects.filter(question=late_question).count() == 1
    assert not apologies().exists()


def test_a_breached_follow_up_earns_a_second_credit_and_apology(late_question, doctor):
    """A follow-up starts a new clock (a new due time): its breach is a new breach."""
    sweep.run_sweep(now=NOW)
    services.post_answer(late_question, doctor, "Try an emollient.", now=NOW + timedelta(minutes=20))
    services.post_follow_up(late_question, late_question.patient, "Still itchy.", now=NOW + timedelta(hours=1))
    late_question.refresh_from_db()
    follow_up_due = late_question.clock_due_at

    sweep.run_sweep(now=follow_up_due + timedelta(minutes=2))
    sweep.run_sweep(now=follow_up_due + timedelta(minutes=3))

    rows = list(
        BreachCredit.objects.order_by("breached_at").values_list("is_follow_up", "clock_due_at", "minutes_late")
    )
    assert rows == [(False, DUE, 7), (True, follow_up_due, 2)]
    subjects = sorted(apologies(late_question).values_list("subject", flat=True))
    assert subjects == [
        f"We are sorry: your follow-up on question #{late_question.pk} was not answered in time",
        f"We are sorry: your question #{late_question.pk} was not answered in time",
    ]


def test_the_row_by_row_fallback_writes_the_credit_and_apology_of_every_good_row(specialty, patient):
    """A batch that fails is retried one question at a time: each good row still gets
    its credit and apology with its escalation; the bad row gets none of them."""
    good = [breached_by(NOW, specialty, patient=patient, warned_at=NOW) for _ in range(3)]
    bad = breached_by(NOW, specialty, patient=patient, late=timedelta(minutes=2), warned_at=NOW)
    Escalation.objects.create(
        question=bad, level=EscalationLevel.BREACHED, clock_due_at=bad.clock_due_at, created_at=NOW
    )

    with mock.patch.object(sweep, "escalate_batch", side_effect=sweep.escalate_batch) as escalate:
        result = sweep.run_sweep(now=NOW)

    assert (result.breached, result.errors) == (3, 1)
    # One batch of four, then each of the four alone.
    assert [len(call.args[1]) for call in escalate.call_args_list] == [4, 1, 1, 1, 1]
    assert sorted(BreachCredit.objects.values_list("question_id", flat=True)) == sorted(q.pk for q in good)
    assert sorted(apologies().values_list("question_id", flat=True)) == sorted(q.pk for q in good)
    assert not BreachCredit.objects.filter(question=bad).exists()


def test_a_credit_already_on_the_ledger_never_blocks_the_escalation(specialty, patient):
    """If a question's breach marker were lost (cleared by hand, a restored backup) while its
    credit stayed on the ledger, the sweep still records the breach and alerts the seniors:
    the clock keeps its one credit and gets no second apology. (Before, the ledger's unique
    constraint failed the row, and the question waited, never escalated, with an error.)"""
    good = breached_by(NOW, specialty, patient=patient, warned_at=NOW)
    credited = breached_by(NOW, specialty, patient=patient, late=timedelta(minutes=2), warned_at=NOW)
    BreachCredit.objects.create(
        patient=patient,
        question=credited,
        clock_due_at=credited.clock_due_at,
        breached_at=NOW,
        minutes_late=2,
        kind="none",
    )

    result = sweep.run_sweep(now=NOW)

    assert (result.breached, result.errors) == (2, 0)
    assert BreachCredit.objects.filter(question=credited).count() == 1
    assert BreachCredit.objects.filter(question=good).count() == 1
    assert list(apologies().values_list("question_id", flat=True)) == [good.pk]
    credited.refresh_from_db()
    assert credited.breached_at == NOW and credited.sweep_error == ""
    assert Escalation.objects.filter(question=credited, level=EscalationLevel.BREACHED).count() == 1
    with pytest.raises(IntegrityError):
        BreachCredit.objects.create(
            patient=patient, question=good, clock_due_at=good.clock_due_at, breached_at=NOW, minutes_late=1, kind="none"
        )


def test_minutes_late_round_up():
    assert credits.minutes_between(DUE, DUE + timedelta(seconds=1)) == 1
    assert credits.minutes_between(DUE, DUE + timedelta(minutes=7)) == 7
    assert credits.minutes_between(DUE, DUE + timedelta(minutes=7, seconds=1)) == 8


def test_the_final_lateness_is_read_from_the_answer_after_the_breach(late_question, doctor):
    sweep.run_sweep(now=NOW)
    assert credits.for_question(late_question)[0].final_minutes_late is None

    services.post_answer(late_question, doctor, "Try an emollient.", now=DUE + timedelta(minutes=52))

    credit = credits.for_question(late_question)[0]
    assert (credit.minutes_late, credit.final_minutes_late) == (7, 52)


# --- The patient's pages ----------------------------------------------------------------------


def page(client, question, at):
    client.force_login(question.patient)
    with time_machine.travel(at, tick=False):
        return client.get(reverse("consultations:question_detail", args=[question.pk])).content.decode()


PROMISE = "A doctor will answer by the guaranteed time"


def test_before_the_due_time_the_page_promises_and_holds_the_notice_hidden(client, late_question):
    html = page(client, late_question, DUE - timedelta(minutes=30))

    assert PROMISE in html
    assert "answer guaranteed by <time" in html
    # Ready for countdown.js, should the time pass while the page is open.
    assert (
        'class="alert alert-danger breach-notice" aria-labelledby="breach-heading" hidden data-overdue-notice' in html
    )


def test_overdue_but_not_yet_swept_the_page_drops_the_promise(client, late_question):
    html = page(client, late_question, NOW)

    assert PROMISE not in html
    assert "will reply by the guaranteed time" not in html
    assert "hidden data-overdue-notice" not in html
    assert "We did not answer in time. We are sorry." in html
    assert 'passed at <time datetime="2026-12-01T15:00:00+01:00">15:00 CET</time> (Tuesday 1 December)' in html
    assert "A senior doctor and the clinic team are alerted automatically" in html
    assert "the answer was guaranteed by" in html
    assert "Credit:" not in html


def test_after_the_breach_the_page_states_it_with_the_credit(client, late_question, settings):
    settings.SLA_BREACH_CREDIT = "refund"
    sweep.run_sweep(now=NOW)

    html = page(client, late_question, NOW + timedelta(minutes=3))

    assert PROMISE not in html
    assert "We did not answer in time. We are sorry." in html
    assert 'passed at <time datetime="2026-12-01T15:00:00+01:00">15:00 CET</time>' in html
    assert 'were alerted at <time datetime="2026-12-01T15:07:00+01:00">15:07 CET</time>' in html
    assert "stays at the top of the doctors' queue" in html
    assert "call your local emergency number now" in html
    assert "contact your own doctor or clinic" in html
    assert "For the delay we have recorded <strong>a refund of this question&#x27;s fee</strong> for you." in html
    assert "Credit: a refund of this question&#x27;s fee</strong>, recorded" in html
    assert "not answered yet (7 min late when recorded)" in html
    assert 'data-state="late"' in html and "late since 1 Dec, 15:00 CET" in html
    assert "overdue by" not in html


def test_once_answered_the_notice_goes_and_the_credit_stays(client, late_question, doctor):
    sweep.run_sweep(now=NOW)
    services.post_answer(late_question, doctor, "Try an emollient.", now=DUE + timedelta(minutes=52))

    html = page(client, late_question, DUE + timedelta(hours=1))

    assert "We did not answer in time" not in html
    assert "answered 52 min late." in html
    assert "Credit: a free question</strong>" in html


def test_my_questions_lists_the_credits_and_says_late(client, late_question, patient, specialty):
    sweep.run_sweep(now=NOW)
    someone_else = QuestionFactory(patient=patient, specialty=specialty, submitted_at=DUE - timedelta(hours=4))
    sweep.run_sweep(now=NOW)
    assert BreachCredit.objects.filter(question=someone_else).exists()

    client.force_login(late_question.patient)
    with time_machine.travel(NOW + timedelta(minutes=3), tick=False):
        html = client.get(reverse("consultations:my_questions")).content.decode()

    assert "When we missed our guarantee" in html
    assert f'href="/questions/{late_question.pk}/">Question #{late_question.pk}</a>' in html
    assert "Credit: a free question" in html
    assert "late since 1 Dec, 15:00 CET" in html
    # Only their own.
    assert f"Question #{someone_else.pk}<" not in html


# --- Staff: the CSV export -------------------------------------------------------------------


def test_the_csv_export_counts_the_credits_per_specialty_after_the_existing_columns(
    client, specialty, other_specialty, patient, settings
):
    settings.SLA_BREACH_CREDIT = "refund"
    # A minute ago: every credit is inside the period that ends when the export runs.
    now = datetime.now(UTC) - timedelta(minutes=1)
    for _ in range(2):
        breached_by(now, specialty, patient=patient, warned_at=now)
    sweep.run_sweep(now=now)
    settings.SLA_BREACH_CREDIT = "free_question"
    breached_by(now, specialty, patient=patient, warned_at=now)
    sweep.run_sweep(now=now + timedelta(seconds=1))
    staff = UserFactory(email="lead@example.com", is_staff=True, is_superuser=True)
    client.force_login(staff)

    response = client.get(reverse("staff:sla_export") + "?period=7d")

    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert dashboard.CSV_COLUMNS[:17] == [
        "period",
        "period_start",
        "period_end",
        "scope",
        "name",
        "received",
        "answered",
        "answered_within_guarantee",
        "answered_late",
        "open_past_due",
        "breaches",
        "compliance_percent",
        "median_minutes_to_first_answer",
        "p90_minutes_to_first_answer",
        "escalations",
        "breach_escalations",
        "open_claims",
    ]
    assert dashboard.CSV_COLUMNS[17:] == ["breach_credits", "breach_credits_refund", "breach_credits_free_question"]
    credit_cells = {
        (row["scope"], row["name"]): (
            row["breach_credits"],
            row["breach_credits_refund"],
            row["breach_credits_free_question"],
        )
        for row in rows
    }
    assert credit_cells[("all", "All specialties")] == ("3", "2", "1")
    assert credit_cells[("specialty", specialty.name)] == ("3", "2", "1")
    assert credit_cells[("specialty", other_specialty.name)] == ("0", "0", "0")
    assert all(cells == ("", "", "") for (scope, _), cells in credit_cells.items() if scope == "doctor")


def test_the_question_is_kept_while_its_credit_is_on_the_ledger(late_question):
    """The ledger is a financial record: deleting the question it belongs to is refused."""
    from django.db.models import ProtectedError

    sweep.run_sweep(now=NOW)
    with pytest.raises(ProtectedError):
        Question.objects.filter(pk=late_question.pk).delete()
