"""The SLA sweep: who is warned and escalated, when, and only once."""

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core import mail
from django.utils import timezone

from consultations import services, sla, sweep
from consultations.models import (
    Escalation,
    EscalationLevel,
    Notification,
    Question,
    QuestionStatus,
    SweepRun,
)
from tests.consultations.sweep_support import breached_by, question_started, sla_staff_member
from tests.factories import DoctorFactory, UserFactory

pytestmark = pytest.mark.django_db

US = timedelta(microseconds=1)


@pytest.fixture
def now():
    return timezone.now()


@pytest.fixture
def sla_staff(db):
    return sla_staff_member()


def recipients_of(question, level):
    return sorted(
        Notification.objects.filter(question=question, kind=f"sla_{level}").values_list("to_email", flat=True)
    )


# --- At risk --------------------------------------------------------------------------


def test_at_risk_question_warns_the_claiming_doctor_once(specialty, doctor, senior_doctor, now):
    question = question_started(now - timedelta(hours=3), specialty, claimed_by=doctor)

    first = sweep.run_sweep(now=now)
    second = sweep.run_sweep(now=now + timedelta(seconds=30))

    assert (first.warned, second.warned) == (1, 0)
    escalation = Escalation.objects.get(question=question)
    assert escalation.level == EscalationLevel.AT_RISK
    assert escalation.recipients == ["doctor@example.com"]
    assert escalation.clock_due_at == question.clock_due_at
    assert recipients_of(question, "at_risk") == ["doctor@example.com"]
    question.refresh_from_db()
    assert question.warned_at == now
    assert question.breached_at is None


def test_unclaimed_at_risk_question_warns_the_verified_doctors_of_its_specialty(
    specialty, doctor, senior_doctor, unverified_doctor, other_doctor, now
):
    question = question_started(now - timedelta(hours=3), specialty)

    sweep.run_sweep(now=now)

    assert recipients_of(question, "at_risk") == ["doctor@example.com", "senior@example.com"]


def test_claim_by_a_doctor_who_lost_verification_falls_back_to_the_specialty(specialty, doctor, now):
    former = DoctorFactory(specialties=[specialty], is_verified=False, user=UserFactory(email="former@example.com"))
    question = question_started(now - timedelta(hours=3), specialty, claimed_by=former)

    sweep.run_sweep(now=now)

    assert recipients_of(question, "at_risk") == ["doctor@example.com"]


def test_at_risk_question_with_no_doctor_at_all_tells_sla_staff(specialty, sla_staff, now):
    question = question_started(now - timedelta(hours=3), specialty)

    sweep.run_sweep(now=now)

    assert recipients_of(question, "at_risk") == ["sla.staff@example.com"]


@pytest.mark.parametrize(
    ("offset", "warned"),
    [(-US, 0), (timedelta(0), 1), (US, 1)],
    ids=["1us-before-warning", "at-warning", "1us-after-warning"],
)
def test_warning_boundary(specialty, doctor, now, offset, warned):
    question = question_started(now - timedelta(hours=2), specialty)

    result = sweep.run_sweep(now=question.clock_warn_at + offset)

    assert result.warned == warned
    assert Escalation.objects.filter(question=question, level=EscalationLevel.AT_RISK).count() == warned


# --- Breached -------------------------------------------------------------------------


def test_breached_question_escalates_once_to_sla_staff_and_seniors(
    specialty, doctor, senior_doctor, other_doctor, sla_staff, now
):
    question = breached_by(now, specialty, claimed_by=doctor, warned_at=now - timedelta(hours=1))

    results = [sweep.run_sweep(now=now + timedelta(seconds=30 * n)) for n in range(3)]

    assert [r.breached for r in results] == [1, 0, 0]
    escalation = Escalation.objects.get(question=question)
    assert escalation.level == EscalationLevel.BREACHED
    assert sorted(escalation.recipients) == ["senior@example.com", "sla.staff@example.com"]
    assert recipients_of(question, "breached") == ["senior@example.com", "sla.staff@example.com"]
    question.refresh_from_db()
    assert question.breached_at == now


@pytest.mark.parametrize(
    ("offset", "breached"),
    [(-US, 0), (timedelta(0), 0), (US, 1)],
    ids=["1us-before-due", "at-due", "1us-after-due"],
)
def test_breach_boundary_is_strictly_after_the_due_time(specialty, sla_staff, now, offset, breached):
    question = question_started(now - timedelta(hours=5), specialty, warned_at=now - timedelta(hours=2))

    result = sweep.run_sweep(now=question.clock_due_at + offset)

    assert result.breached == breached
    assert Escalation.objects.filter(question=question, level=EscalationLevel.BREACHED).count() == breached


def test_question_found_late_without_a_warning_gets_only_the_breach_and_the_doctors_hear_of_it(
    specialty, doctor, senior_doctor, sla_staff, now
):
    question = breached_by(now, specialty, late=timedelta(hours=1), claimed_by=doctor)

    result = sweep.run_sweep(now=now)
    later = sweep.run_sweep(now=now + timedelta(minutes=1))

    assert (result.breached, result.warned, later.warned) == (1, 0, 0)
    assert list(Escalation.objects.filter(question=question).values_list("level", flat=True)) == ["breached"]
    assert recipients_of(question, "breached") == ["doctor@example.com", "senior@example.com", "sla.staff@example.com"]
    body = Notification.objects.get(question=question, to_email="doctor@example.com").body
    assert 'No "at risk" warning went out' in body
    question.refresh_from_db()
    assert question.warned_at == now


def test_sweep_leaves_answered_closed_and_paused_questions_alone(specialty, doctor, sla_staff, now):
    answered = breached_by(now, specialty)
    services.post_answer(answered, doctor, "Here is my answer.", now=now - timedelta(minutes=2))
    closed = breached_by(now, specialty)
    services.close_question(closed, now=now - timedelta(minutes=2))
    paused = breached_by(now, specialty, late=-timedelta(hours=1))
    services.request_information(paused, doctor, "How long has it itched?", now=now - timedelta(hours=2))

    result = sweep.run_sweep(now=now + timedelta(hours=12))

    assert (result.warned, result.breached, result.lead_escalated) == (0, 0, 0)
    assert not Escalation.objects.exists()


# --- Second level ---------------------------------------------------------------------


def test_lead_escalation_follows_one_more_window_past_due_once(specialty, senior_doctor, sla_staff, now):
    question = breached_by(now, specialty, warned_at=now - timedelta(hours=2))
    sweep.run_sweep(now=now)
    lead_at = sla.LEAD.instant(question.clock_due_at)

    at_lead = sweep.run_sweep(now=lead_at)
    after = sweep.run_sweep(now=lead_at + US)
    again = sweep.run_sweep(now=lead_at + timedelta(hours=1))

    assert (at_lead.lead_escalated, after.lead_escalated, again.lead_escalated) == (0, 1, 0)
    lead = Escalation.objects.get(question=question, level=EscalationLevel.LEAD)
    assert sorted(lead.recipients) == ["senior@example.com", "sla.staff@example.com"]
    assert recipients_of(question, "lead") == ["senior@example.com", "sla.staff@example.com"]


def test_urgent_question_escalates_to_lead_after_the_urgent_window(specialty, sla_staff, now):
    question = breached_by(now, specialty, is_urgent=True, warned_at=now - timedelta(minutes=20))
    sweep.run_sweep(now=now)

    result = sweep.run_sweep(now=question.clock_due_at + timedelta(hours=1) + US)

    assert result.lead_escalated == 1


# --- Follow-ups -----------------------------------------------------------------------


def test_follow_up_clock_escalates_the_same_way_and_separately(specialty, doctor, senior_doctor, sla_staff, now):
    question = question_started(now - timedelta(days=1), specialty, claimed_by=doctor)
    sweep.run_sweep(now=now - timedelta(days=1) + timedelta(hours=3))  # first clock: at risk
    services.post_answer(question, doctor, "Use this cream twice a day.", now=now - timedelta(hours=20))
    services.post_follow_up(question, question.patient, "It has not improved.", now=now - timedelta(hours=4))
    question.refresh_from_db()
    assert (question.is_follow_up, question.warned_at, question.claimed_by) == (True, None, doctor)

    at_risk = sweep.run_sweep(now=question.clock_warn_at)
    breached = sweep.run_sweep(now=question.clock_due_at + US)

    assert (at_risk.warned, breached.breached) == (1, 1)
    follow_ups = Escalation.objects.filter(question=question, is_follow_up=True).order_by("created_at")
    assert [(e.level, e.clock_due_at) for e in follow_ups] == [
        ("at_risk", question.clock_due_at),
        ("breached", question.clock_due_at),
    ]
    assert Escalation.objects.filter(question=question, is_follow_up=False).count() == 1
    # The doctor was warned about both clocks: two distinct messages, none lost to de-duplication.
    assert (
        Notification.objects.filter(question=question, kind="sla_at_risk", to_email="doctor@example.com").count() == 2
    )
    assert "follow-up" in Notification.objects.filter(question=question, kind="sla_breached").first().subject


# --- Robustness -----------------------------------------------------------------------


def test_one_bad_row_does_not_stop_the_sweep(specialty, sla_staff, now, monkeypatch):
    good = [breached_by(now, specialty, warned_at=now) for _ in range(3)]
    bad = breached_by(now, specialty, late=timedelta(minutes=2), warned_at=now)
    real_messages = sweep.messages

    def messages_failing_for_bad(level, question, recipients, **kwargs):
        if question.pk == bad.pk:
            raise RuntimeError("template exploded")
        return real_messages(level, question, recipients, **kwargs)

    monkeypatch.setattr(sweep, "messages", messages_failing_for_bad)

    result = sweep.run_sweep(now=now)

    assert (result.breached, result.errors) == (3, 1)
    assert set(Escalation.objects.values_list("question_id", flat=True)) == {q.pk for q in good}
    bad.refresh_from_db()
    assert bad.breached_at is None  # rolled back with its escalation and notifications
    assert "template exploded" in bad.sweep_error
    assert bad.sweep_retry_at == now + sweep.retry_after()
    assert not Notification.objects.filter(question=bad).exists()
    assert SweepRun.objects.get(pk=result.run_id).errors == 1

    # Not retried before its retry time; retried (and cleared) after it once fixed.
    monkeypatch.setattr(sweep, "messages", real_messages)
    assert sweep.run_sweep(now=now + timedelta(seconds=1)).breached == 0
    retry_at = bad.sweep_retry_at
    assert sweep.run_sweep(now=retry_at).breached == 1
    bad.refresh_from_db()
    assert (bad.breached_at, bad.sweep_error, bad.sweep_retry_at) == (retry_at, "", None)


def test_answer_arriving_between_selection_and_update_wins(specialty, doctor, sla_staff, now, monkeypatch):
    question = breached_by(now, specialty, warned_at=now)
    real_claim = sweep.claim_batch

    def claim_then_answer(transition, when, limit):
        ids = real_claim(transition, when, limit)
        if ids and transition.key == EscalationLevel.BREACHED:
            services.post_answer(question, doctor, "Answered just in time.", now=when)
        return ids

    monkeypatch.setattr(sweep, "claim_batch", claim_then_answer)

    result = sweep.run_sweep(now=now)

    assert result.breached == 0
    assert not Escalation.objects.exists()


# --- What goes out --------------------------------------------------------------------


def test_escalation_emails_never_reveal_the_patient(specialty, doctor, senior_doctor, sla_staff, patient, now):
    question_started(now - timedelta(hours=3), specialty, patient=patient)
    late = breached_by(now, specialty, patient=patient, late=timedelta(hours=1))
    late.refresh_from_db()

    sweep.run_sweep(now=now)
    sweep.run_sweep(now=sla.LEAD.instant(late.clock_due_at) + US)

    sent = Notification.objects.filter(kind__startswith="sla_")
    assert {n.kind for n in sent} == {"sla_at_risk", "sla_breached", "sla_lead"}
    for notification in sent:
        text = notification.subject + notification.body
        assert "Paula" not in text
        assert "patient@example.com" not in text
        assert patient.patient_label in notification.body
        assert late.title not in text  # no health details by e-mail either


def test_escalation_emails_show_times_in_the_recipients_time_zone(specialty, sla_staff, now):
    tokyo = DoctorFactory(
        specialties=[specialty], is_senior=True, user=UserFactory(email="tokyo@example.com", time_zone="Asia/Tokyo")
    )
    question = breached_by(now, specialty, warned_at=now)

    sweep.run_sweep(now=now)

    body = Notification.objects.get(question=question, recipient=tokyo.user).body
    local_due = question.clock_due_at.astimezone(ZoneInfo("Asia/Tokyo"))
    assert local_due.strftime("%H:%M") in body
    assert "JST" in body


def test_escalation_emails_are_sent_after_commit_exactly_once(
    specialty, senior_doctor, sla_staff, now, django_capture_on_commit_callbacks
):
    question = breached_by(now, specialty, warned_at=now)

    with django_capture_on_commit_callbacks(execute=True):
        sweep.run_sweep(now=now)
    with django_capture_on_commit_callbacks(execute=True):
        sweep.run_sweep(now=now + timedelta(minutes=1))

    staff_mail = [m for m in mail.outbox if m.to[0] != question.patient.email]
    assert sorted(m.to[0] for m in staff_mail) == ["senior@example.com", "sla.staff@example.com"]
    assert all(m.subject.startswith("Breached: question #") for m in staff_mail)
    # And the patient's apology (issue 14), once.
    assert [m.subject for m in mail.outbox if m.to[0] == question.patient.email] == [
        f"We are sorry: your question #{question.pk} was not answered in time"
    ]
    assert set(Notification.objects.values_list("status", flat=True)) == {"sent"}


def test_doctor_links_point_at_the_workbench_and_staff_links_at_the_staff_admin(
    specialty, senior_doctor, sla_staff, now
):
    question = breached_by(now, specialty, warned_at=now)

    sweep.run_sweep(now=now)

    senior_body = Notification.objects.get(to_email="senior@example.com").body
    staff_body = Notification.objects.get(to_email="sla.staff@example.com").body
    assert "/doctor/" in senior_body
    assert "/admin/" in staff_body
    assert str(question.pk) in senior_body


# --- The heartbeat --------------------------------------------------------------------


def test_each_sweep_records_a_run_with_its_counts(specialty, doctor, sla_staff, now):
    question_started(now - timedelta(hours=3), specialty)
    breached_by(now, specialty, warned_at=now)
    breached_by(now, specialty, warned_at=now)

    result = sweep.run_sweep(now=now)

    run = SweepRun.objects.get(pk=result.run_id)
    assert (run.warned, run.breached, run.lead_escalated, run.errors) == (1, 2, 0, 0)
    assert run.started_at == now
    assert run.finished_at >= now
    assert run.host
    assert set(Escalation.objects.values_list("sweep_id", flat=True)) == {run.pk}
    assert sweep.last_finished_run() == run


def test_old_quiet_runs_are_pruned_but_runs_that_did_something_are_kept(specialty, sla_staff, now):
    old = now - sweep.QUIET_RUN_RETENTION - timedelta(hours=1)
    quiet = sweep.run_sweep(now=old)
    breached_by(old, specialty, warned_at=old)
    busy = sweep.run_sweep(now=old + US)

    sweep.run_sweep(now=now)

    assert not SweepRun.objects.filter(pk=quiet.run_id).exists()
    assert SweepRun.objects.filter(pk=busy.run_id).exists()


def test_open_questions_still_awaiting_answer_keep_their_status(specialty, sla_staff, now):
    question = breached_by(now, specialty, warned_at=now)

    sweep.run_sweep(now=now)

    question.refresh_from_db()
    assert question.status == QuestionStatus.OPEN  # escalation never changes what the patient sees
    assert Question.objects.awaiting_doctor().filter(pk=question.pk).exists()
