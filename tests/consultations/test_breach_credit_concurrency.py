"""Issue 14 ("patients hear the truth"): one breach, one apology, one credit, even when
four sweeps race over the same due questions on PostgreSQL."""

from collections import Counter
from datetime import timedelta

import pytest
from django.conf import settings
from django.core import mail
from django.utils import timezone

from consultations.models import BreachCredit, Escalation, EscalationLevel, Notification, Question
from tests.consultations.sweep_support import sla_staff_member, unsaved_questions
from tests.consultations.test_sweep_concurrency import run_sweeps_in_parallel
from tests.factories import UserFactory

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql",
        reason="row locks and concurrent transactions need PostgreSQL (set DATABASE_URL=postgres://...)",
    ),
]

SWEEPS = 4
DUE_PER_PATIENT = 30


def test_four_parallel_sweeps_write_one_apology_and_one_credit_per_breach(specialty, senior_doctor, settings):
    settings.SLA_BREACH_CREDIT = "refund"
    sla_staff_member()
    patients = [UserFactory(email=f"patient{n}@example.com") for n in range(3)]
    now = timezone.now()
    for patient in patients:
        Question.objects.bulk_create(
            unsaved_questions(
                DUE_PER_PATIENT,
                specialty=specialty,
                patient=patient,
                started_at=now - timedelta(hours=4, minutes=7),
                warned_at=now - timedelta(hours=1),
            )
        )
    due = 3 * DUE_PER_PATIENT

    results = run_sweeps_in_parallel(now, SWEEPS, batch_size=7)

    assert sum(result.breached for result in results) == due
    assert sum(result.errors for result in results) == 0
    assert Escalation.objects.filter(level=EscalationLevel.BREACHED).count() == due
    credits = list(BreachCredit.objects.values_list("question_id", "patient_id", "kind", "minutes_late"))
    assert len(credits) == due
    assert len({question for question, *_ in credits}) == due
    # Each credit is its own patient's, of the configured kind, 7 minutes late at the breach.
    owners = dict(Question.objects.values_list("pk", "patient_id"))
    assert all(owners[question] == patient for question, patient, _, _ in credits)
    assert {(kind, late) for _, _, kind, late in credits} == {("refund", 7)}
    # Written by the sweep that recorded the breach, in its transaction.
    assert set(BreachCredit.objects.values_list("sweep_id", flat=True)) <= {result.run_id for result in results}
    apologies = Notification.objects.filter(kind="breach_apology")
    assert apologies.count() == due
    assert Counter(apologies.values_list("question_id", flat=True)).most_common(1)[0][1] == 1
    assert set(apologies.values_list("status", flat=True)) == {"sent"}
    sent = Counter(m.to[0] for m in mail.outbox if m.subject.startswith("We are sorry"))
    assert sent == {patient.email: DUE_PER_PATIENT for patient in patients}
