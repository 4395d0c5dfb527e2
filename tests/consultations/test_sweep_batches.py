"""The sweep works a batch at a time: one transaction, a few Celery messages, and a
row-by-row retry when the batch fails, so one bad row still stops nothing."""

import logging
from datetime import timedelta
from unittest import mock

import pytest
from django.core import mail
from django.utils import timezone

from consultations import email_skeletons, notifications, sweep, tasks
from consultations.models import BreachCredit, Escalation, EscalationLevel, Notification, NotificationStatus, Question
from portal import database
from portal.celery import app
from tests.consultations.sweep_support import breached_by, sla_staff_member, staff_group, unsaved_questions
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

CLOSED_PORT_BROKER = "redis://127.0.0.1:1/0"


@pytest.fixture
def now():
    return timezone.now()


@pytest.fixture
def sla_staff(db):
    return sla_staff_member()


def breached_in_bulk(count, specialty, patient, now):
    rows = unsaved_questions(
        count,
        specialty=specialty,
        patient=patient,
        started_at=now - timedelta(hours=5),
        warned_at=now - timedelta(hours=2),
    )
    return [question.pk for question in Question.objects.bulk_create(rows)]


def test_a_batch_the_database_rejects_is_retried_row_by_row_and_only_the_bad_row_waits(specialty, sla_staff, now):
    good = [breached_by(now, specialty, warned_at=now) for _ in range(4)]
    bad = breached_by(now, specialty, late=timedelta(minutes=2), warned_at=now)
    # Inconsistent data: a breach escalation already exists for this clock although the
    # question is not marked breached. The batch's bulk insert hits the unique constraint.
    Escalation.objects.create(
        question=bad, level=EscalationLevel.BREACHED, clock_due_at=bad.clock_due_at, created_at=now
    )

    result = sweep.run_sweep(now=now)

    assert (result.breached, result.errors) == (4, 1)
    assert set(Escalation.objects.filter(sweep_id=result.run_id).values_list("question_id", flat=True)) == {
        q.pk for q in good
    }
    # Per good question: the staff escalation e-mail and the patient's apology (issue 14).
    assert Notification.objects.filter(question__in=good).count() == 4 * 2
    bad.refresh_from_db()
    assert bad.breached_at is None
    assert "IntegrityError" in bad.sweep_error
    assert bad.sweep_retry_at == now + sweep.retry_after()
    assert not Notification.objects.filter(question=bad).exists()


def test_a_breach_without_update_returning_is_applied_the_same_way(specialty, doctor, senior_doctor, sla_staff, now):
    """The portable path (no UPDATE ... RETURNING) gives the same escalations."""
    warned = breached_by(now, specialty, warned_at=now - timedelta(hours=1))
    never_warned = breached_by(now, specialty, claimed_by=doctor)

    with mock.patch.object(sweep, "update_returning", return_value=None):
        first = sweep.run_sweep(now=now)
        again = sweep.run_sweep(now=now + timedelta(minutes=1))

    assert (first.breached, again.breached, again.warned) == (2, 0, 0)
    escalated = Notification.objects.filter(kind="sla_breached")
    assert sorted(escalated.filter(question=warned).values_list("to_email", flat=True)) == [
        "senior@example.com",
        "sla.staff@example.com",
    ]
    assert sorted(escalated.filter(question=never_warned).values_list("to_email", flat=True)) == [
        "doctor@example.com",
        "senior@example.com",
        "sla.staff@example.com",
    ]
    never_warned.refresh_from_db()
    assert never_warned.warned_at == now


def _written(questions: list[Question]) -> tuple:
    """What a sweep wrote for these questions: each question named by its place in the
    list, its patient (a different one per question) as "patient"."""
    place = {question.pk: n for n, question in enumerate(questions)}
    patients = {question.pk: (question.patient_id, question.patient.email) for question in questions}
    labels = {question.pk: question.patient_label for question in questions}

    def plain(pk: int, text: str) -> str:
        return text.replace(f"#{pk}", "#N").replace(f"/{pk}/", "/N/").replace(labels[pk], "LABEL")

    escalations = Escalation.objects.filter(question__in=questions)
    credit_rows = BreachCredit.objects.filter(question__in=questions)
    emails = Notification.objects.filter(question__in=questions)
    return (
        sorted(
            (place[row[0]], *row[1:])
            for row in escalations.values_list("question_id", "level", "is_follow_up", "clock_due_at", "recipients")
        ),
        sorted(
            (place[pk], patient_id == patients[pk][0], *rest)
            for pk, patient_id, *rest in credit_rows.values_list(
                "question_id", "patient_id", "is_follow_up", "clock_due_at", "kind"
            )
        ),
        sorted(
            (
                place[pk],
                "patient" if to_email == patients[pk][1] else to_email,
                kind,
                plain(pk, subject),
                plain(pk, body),
            )
            for pk, to_email, kind, subject, body in emails.values_list(
                "question_id", "to_email", "kind", "subject", "body"
            )
        ),
    )


def test_the_sweep_writes_the_same_rows_through_bulk_create_on_another_database(
    specialty, doctor, senior_doctor, sla_staff, now
):
    """Another database takes bulk_create: the same escalations, credits and e-mails as
    the COPY per table writes on PostgreSQL."""
    copied = [breached_by(now, specialty), breached_by(now, specialty, claimed_by=doctor)]
    assert sweep.run_sweep(now=now).breached == 2
    portable = [breached_by(now, specialty), breached_by(now, specialty, claimed_by=doctor)]
    with mock.patch.object(database, "_copies_rows", return_value=False):
        assert sweep.run_sweep(now=now).breached == 2

    written = _written(copied)
    assert written == _written(portable)
    escalations, credit_rows, emails = written
    assert [row[:2] for row in escalations] == [(0, "breached"), (1, "breached")]
    # Each never-warned breach: the doctor (claiming, or of the specialty), the senior, the
    # SLA staff member, and the patient's apology.
    assert len(credit_rows) == 2 and len(emails) == 2 * 4
    assert set(Escalation.objects.values_list("created_at", flat=True)) == {now}


def test_a_sweep_hands_its_emails_to_celery_in_a_few_messages(
    specialty, senior_doctor, sla_staff, patient, now, django_capture_on_commit_callbacks
):
    breached_in_bulk(250, specialty, patient, now)

    with (
        mock.patch.object(tasks.send_notifications, "apply_async") as batch_publish,
        mock.patch.object(tasks.send_notification, "apply_async") as single_publish,
        django_capture_on_commit_callbacks(execute=True),
    ):
        result = sweep.run_sweep(now=now)

    assert result.breached == 250
    created = set(Notification.objects.values_list("pk", flat=True))
    # Two escalation e-mails and the patient's apology per question.
    assert len(created) == 750
    chunks = [call.args[0][0] for call in batch_publish.call_args_list]
    assert [len(chunk) for chunk in chunks] == [500, 250]  # notifications.DELIVERY_CHUNK rows a message
    assert set().union(*chunks) == created
    # Behind the next sweep in the queue, not in front of it.
    assert {call.kwargs["priority"] for call in batch_publish.call_args_list} == {notifications.BULK_DELIVERY_PRIORITY}
    single_publish.assert_not_called()


@pytest.fixture
def unreachable_broker(monkeypatch):
    """Point Celery at a port nothing listens on, and really publish (no eager mode)."""
    monkeypatch.setitem(app.conf, "task_always_eager", False)
    monkeypatch.setitem(app.conf, "broker_url", CLOSED_PORT_BROKER)
    monkeypatch.setitem(app.conf, "broker_transport_options", {"max_retries": 1, "socket_connect_timeout": 1})
    monkeypatch.setattr(app, "_pool", None)
    monkeypatch.setattr(app.amqp, "_producer_pool", None)
    yield
    if app._pool is not None:
        app._pool.force_close_all()


def test_with_the_broker_down_escalation_emails_wait_in_the_outbox_and_the_resend_sends_each_once(
    specialty, senior_doctor, sla_staff, patient, now, unreachable_broker, django_capture_on_commit_callbacks, caplog
):
    question_ids = breached_in_bulk(250, specialty, patient, now)

    with caplog.at_level(logging.WARNING), django_capture_on_commit_callbacks(execute=True):
        result = sweep.run_sweep(now=now)

    assert result.breached == 250
    # One publish failed; the other chunks were not tried against the dead broker.
    failures = [r.getMessage() for r in caplog.records if "Broker unavailable" in r.getMessage()]
    assert failures == ["Broker unavailable; 750 notifications wait for the re-send"]
    rows = Notification.objects.filter(question_id__in=question_ids)
    assert set(rows.values_list("status", "attempts")) == {(NotificationStatus.PENDING, 0)}
    assert mail.outbox == []

    # The broker is back (the re-send runs as a periodic task), twice.
    app.conf.task_always_eager = True
    sent = tasks.resend_pending_notifications() + tasks.resend_pending_notifications()
    sent += tasks.resend_pending_notifications() + tasks.resend_pending_notifications()

    assert sent == 750
    assert set(rows.values_list("status", "attempts")) == {(NotificationStatus.SENT, 1)}
    assert len(mail.outbox) == 750
    assert len({(m.to[0], m.subject) for m in mail.outbox}) == 750


def test_each_recipient_gets_their_own_link_even_if_a_template_transforms_it(specialty, senior_doctor, now):
    """E-mails are rendered once per kind and flags with a marker for each value; a template
    that changed a value (a filter) would mangle its marker, and then each recipient's
    e-mail is rendered on its own instead of getting a broken link."""
    sla_staff_member()
    question = breached_by(now, specialty, warned_at=now)
    real_render = email_skeletons.render_templates

    def render_with_a_filter_on_the_link(kind, context):
        return real_render(kind, {**context, "url": context["url"].upper()})

    with mock.patch.object(email_skeletons, "render_templates", side_effect=render_with_a_filter_on_the_link):
        sweep.run_sweep(now=now)

    senior = Notification.objects.get(question=question, to_email="senior@example.com").body
    staff = Notification.objects.get(question=question, to_email="sla.staff@example.com").body
    assert f"/DOCTOR/CONSULTATIONS/QUESTION/{question.pk}/CHANGE/" in senior
    assert f"/ADMIN/CONSULTATIONS/QUESTION/{question.pk}/CHANGE/" in staff
    assert "URL" not in senior + staff
    assert "\x00" not in senior + staff


def test_a_batch_renders_each_kind_once_per_flags_and_every_reader_gets_their_zone_and_link(
    specialty, senior_doctor, now
):
    sla_staff_member("sla.one@example.com")
    sla_staff_member("sla.two@example.com")
    staff_group(UserFactory(email="sla.tokyo@example.com", time_zone="Asia/Tokyo", is_staff=True))
    questions = [breached_by(now, specialty, warned_at=now) for _ in range(3)]

    with mock.patch.object(email_skeletons, "render_templates", side_effect=email_skeletons.render_templates) as render:
        sweep.run_sweep(now=now)

    # One batch, one kind of breach (same flags): the breach e-mail's templates and the
    # apology's once each, for 3 questions and 5 readers.
    assert render.call_count == 2
    for question in questions:
        bodies = dict(
            Notification.objects.filter(question=question, kind="sla_breached").values_list("to_email", "body")
        )
        assert len(bodies) == 4
        assert f"/doctor/consultations/question/{question.pk}/change/" in bodies["senior@example.com"]
        for staff_email in ("sla.one@example.com", "sla.two@example.com", "sla.tokyo@example.com"):
            assert f"/admin/consultations/question/{question.pk}/change/" in bodies[staff_email]
        assert "JST" in bodies["sla.tokyo@example.com"]
        assert "UTC" in bodies["sla.one@example.com"]
