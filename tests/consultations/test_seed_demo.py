"""The demo data behind `make run`: complete, consistent, and safe to load again."""

from collections import Counter
from datetime import timedelta
from io import StringIO

import pytest
from django.conf import settings
from django.contrib import admin
from django.contrib.auth import authenticate, get_user_model
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command
from django.db.models import F
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone

from articles.models import Article, Source
from consultations import demo, duty, services, sla, sweep
from consultations.access import questions_for_doctor
from consultations.demo_plans import AlreadyBreached, BreachingSoon
from consultations.doctor_admin import doctor_admin_site
from consultations.models import (
    BreachCredit,
    DoctorProfile,
    DutyPeriod,
    Escalation,
    Question,
    QuestionStatus,
    Reply,
    ReplyKind,
    Specialty,
)
from portal.demo import seed_demo

pytestmark = pytest.mark.django_db

OPEN = (QuestionStatus.OPEN, QuestionStatus.INFO_REQUESTED)
QUESTIONS = demo.content().questions


def snapshot():
    """Every row the demo writes, as plain values."""
    models = [get_user_model(), Specialty, DoctorProfile, DutyPeriod, Question, Reply, Escalation, BreachCredit, Group]
    rows = {model.__name__: list(model.objects.order_by("pk").values()) for model in models}
    rows["doctor specialties"] = list(DoctorProfile.specialties.through.objects.order_by("pk").values())
    rows["group permissions"] = sorted(Group.objects.values_list("name", "permissions__codename"))
    rows["user groups"] = sorted(get_user_model().groups.through.objects.values_list("user_id", "group_id"))
    return rows


def demo_doctor():
    return DoctorProfile.objects.get(user__email=demo.DOCTOR_EMAIL)


def already_breached():
    return next(q for q in QUESTIONS if isinstance(q.plan, AlreadyBreached))


def breaching_soon():
    spec = next(q for q in QUESTIONS if isinstance(q.plan, BreachingSoon))
    return Question.objects.filter(title=spec.title, patient__email=spec.patient)


def test_seeding_twice_changes_nothing():
    call_command("seed_demo", stdout=StringIO())
    first = snapshot()
    articles = (Article.objects.count(), Source.objects.count())
    call_command("seed_demo", stdout=StringIO())
    assert snapshot() == first
    assert (Article.objects.count(), Source.objects.count()) == articles
    assert Question.objects.count() == len(QUESTIONS)


def test_articles_are_written_and_reviewed_by_the_demo_doctors():
    seed_demo()
    published = Article.objects.published()
    assert published.count() >= 12
    verified = set(DoctorProfile.objects.filter(is_verified=True).values_list("pk", flat=True))
    for article in published:
        assert {article.author_id, article.reviewer_id} <= verified
        assert article.author_id != article.reviewer_id
    assert published.filter(author=demo_doctor()).exists()


def test_each_article_is_reviewed_by_a_doctor_of_its_own_specialty():
    """Issue 15: one family doctor reviewed 9 of 13 articles across unrelated specialties."""
    seed_demo()
    published = Article.objects.published().select_related("reviewer")
    for article in published:
        assert article.reviewer.specialties.filter(pk=article.specialty_id).exists(), article.slug
    per_reviewer = Counter(published.values_list("reviewer_id", flat=True))
    assert max(per_reviewer.values()) <= 2


def test_demo_doctor_queue_has_open_questions_in_every_sla_state():
    now = timezone.now()
    seed_demo(now)
    doctor = demo_doctor()
    queue = list(questions_for_doctor(doctor).filter(status__in=OPEN))

    for state in (sla.ON_TRACK, sla.AT_RISK, sla.BREACHED):
        in_state = [q for q in queue if sla.sla_state(q, now) == state]
        assert any(q.claimed_by_id is None for q in in_state), f"no unclaimed {state} question"
        assert any(q.claimed_by_id == doctor.pk for q in in_state), f"no {state} question claimed by the doctor"
    assert any(sla.sla_state(q, now) == sla.PAUSED and q.status == QuestionStatus.INFO_REQUESTED for q in queue)
    assert any(q.is_follow_up and q.claimed_by_id == doctor.pk for q in queue)
    urgent = [q for q in queue if q.is_urgent]
    assert len(urgent) == 1 and "chest pain" in urgent[0].red_flags


def test_only_the_question_describing_an_emergency_is_urgent():
    seed_demo()
    urgent = Question.objects.filter(is_urgent=True)
    assert [q.title for q in urgent] == ["Tightness in my chest when I climb the stairs"]
    assert not Question.objects.filter(is_urgent=False).exclude(red_flags=[]).exists()


def test_open_clocks_are_consistent_and_left_for_the_sweep_to_escalate():
    seed_demo()
    # The one open question shown as already swept has its own test below.
    for question in Question.objects.filter(status__in=OPEN).exclude(title=already_breached().title):
        assert question.clock_warn_at == sla.warn_at_for(question.clock_started_at, question.clock_due_at)
        assert question.warned_at is None and question.breached_at is None
        if question.is_follow_up:
            assert question.first_answered_at is not None
        else:
            assert question.due_at == question.clock_due_at
            assert question.first_answered_at is None and question.answered_by is None
            if question.title != next(iter(breaching_soon())).title:
                window = question.clock_due_at - question.clock_started_at
                assert window == sla.answer_window(question.is_urgent)


def test_answered_questions_have_a_doctors_answer_and_no_running_clock():
    now = timezone.now()
    seed_demo(now)
    answered = Question.objects.filter(first_answered_at__isnull=False, is_follow_up=False)
    states = {sla.sla_state(q, now) for q in answered}
    assert states == {sla.MET, sla.MISSED}
    for question in answered:
        assert question.clock_due_at is None and question.answered_by is not None
        answer = question.replies.get(kind=ReplyKind.ANSWER)
        assert answer.doctor == question.answered_by and answer.created_at == question.first_answered_at
        assert len(answer.body) > 200
    missed = [q for q in answered if sla.sla_state(q, now) == sla.MISSED]
    for question in missed:
        assert question.breached_at == question.due_at
        assert set(question.escalations.values_list("level", flat=True)) == {"at_risk", "breached"}


def test_a_patient_follow_up_reopens_the_question_for_the_answering_doctor():
    now = timezone.now()
    seed_demo(now)
    question = Question.objects.get(is_follow_up=True)
    assert [r.kind for r in question.replies.all()] == [ReplyKind.ANSWER, ReplyKind.FOLLOW_UP]
    assert question.status == QuestionStatus.OPEN and question.claimed_by == question.answered_by == demo_doctor()
    assert question.clock_started_at == question.replies.get(kind=ReplyKind.FOLLOW_UP).created_at
    assert sla.sla_state(question, now) == sla.ON_TRACK


def test_people_specialties_and_doctors_are_complete():
    seed_demo()
    assert Specialty.objects.count() >= 8
    assert not Specialty.objects.filter(description="").exists()
    verified = DoctorProfile.objects.filter(is_verified=True)
    assert verified.count() >= 6
    assert verified.filter(is_senior=True).count() == 2
    assert DoctorProfile.objects.filter(is_verified=False).count() == 1
    for doctor in DoctorProfile.objects.all():
        assert doctor.display_name.startswith("Dr. ")
        assert doctor.qualifications and doctor.registration_number and doctor.bio
        assert doctor.specialties.exists()
    assert set(demo_doctor().specialties.values_list("slug", flat=True)) == {"general-medicine", "dermatology"}
    patients = get_user_model().objects.filter(email__in=[p.email for p in demo.content().patients])
    assert {p.time_zone for p in patients} >= {"Europe/Warsaw", "America/New_York"}
    assert all(p.age and p.sex for p in patients)


@pytest.mark.parametrize("email", [demo.PATIENT_EMAIL, demo.DOCTOR_EMAIL, demo.STAFF_EMAIL])
def test_demo_logins_work_with_the_demo_password(client, email):
    seed_demo()
    assert authenticate(username=email, password="portal-demo") is not None
    assert client.login(email=email, password="portal-demo")


def test_demo_doctor_may_enter_the_doctors_admin_and_staff_the_staff_admin():
    seed_demo()
    users = get_user_model().objects
    request = RequestFactory().get("/")
    request.user = users.get(email=demo.DOCTOR_EMAIL)
    assert doctor_admin_site.has_permission(request)
    assert not request.user.is_staff  # doctors work in their own admin, not the staff one
    request.user = users.get(email=demo.STAFF_EMAIL)
    assert admin.site.has_permission(request)
    request.user = users.get(email=demo.PATIENT_EMAIL)
    assert not doctor_admin_site.has_permission(request) and not admin.site.has_permission(request)
    request.user = users.get(email="piotr.zielinski@example.com")
    assert not doctor_admin_site.has_permission(request)


def test_demo_doctor_sees_every_state_in_the_workbench_queue(client):
    seed_demo()
    client.force_login(get_user_model().objects.get(email=demo.DOCTOR_EMAIL))
    response = client.get(reverse("doctor_admin:consultations_question_changelist"))
    assert response.status_code == 200
    page = response.content.decode()
    for title in ("Tightness in my chest when I climb the stairs", "Hand eczema flaring despite steroid cream"):
        assert title in page
    for label in ("On track", "At risk", "Breached"):
        assert label in page
    assert "Shoulder pain" not in page  # Orthopedics: not this doctor's specialty


def test_staff_has_the_dashboard_and_reassign_permissions_through_the_sla_group():
    seed_demo()
    staff = get_user_model().objects.get(email=demo.STAFF_EMAIL)
    group = Group.objects.get(name=settings.SLA_STAFF_GROUP)
    assert staff.is_staff and staff.groups.filter(pk=group.pk).exists()
    granted = set(group.permissions.values_list("content_type__app_label", "codename"))
    assert {("consultations", "view_sla_dashboard"), ("consultations", "reassign_question")} <= granted
    assert ("consultations", "change_question") in granted
    assert staff.has_perm("consultations.view_sla_dashboard") and staff.has_perm("consultations.reassign_question")


def test_staff_reads_medical_records_through_the_clinical_group_not_the_sla_group():
    """Issue 11 item 2: clinical access is granted explicitly, never with the SLA group's other rights."""
    from consultations.access import CLINICAL_STAFF_GROUP, may_read_medical_records

    seed_demo()
    staff = get_user_model().objects.get(email=demo.STAFF_EMAIL)
    clinical = Group.objects.get(name=CLINICAL_STAFF_GROUP)
    assert staff.groups.filter(pk=clinical.pk).exists()
    assert clinical.permissions.filter(codename="view_medical_record").exists()
    sla_group = Group.objects.get(name=settings.SLA_STAFF_GROUP)
    assert not sla_group.permissions.filter(codename="view_medical_record").exists()
    assert may_read_medical_records(staff)


def test_breaching_soon_question_warns_in_a_minute_and_breaches_in_three():
    now = timezone.now()
    seed_demo(now)
    question = breaching_soon().get()
    assert question.status == QuestionStatus.OPEN and question.claimed_by is None
    assert question.clock_warn_at == now + timedelta(minutes=1)
    assert question.clock_due_at == question.due_at == now + timedelta(minutes=3)
    assert question.clock_warn_at == sla.warn_at_for(question.clock_started_at, question.clock_due_at)
    assert sla.sla_state(question, now) == sla.ON_TRACK
    assert sla.sla_state(question, now + timedelta(minutes=2)) == sla.AT_RISK
    assert sla.sla_state(question, now + timedelta(minutes=4)) == sla.BREACHED


def test_breaching_soon_question_starts_again_once_the_sweep_has_escalated_it():
    start = timezone.now()
    seed_demo(start)
    question = breaching_soon().get()
    later = start + timedelta(minutes=10)
    Question.objects.filter(pk=question.pk).update(warned_at=start + timedelta(minutes=1), breached_at=later)

    seed_demo(later)

    again = breaching_soon().get()
    assert again.pk == question.pk
    assert again.warned_at is None and again.breached_at is None
    assert again.clock_warn_at == later + timedelta(minutes=1)
    assert Question.objects.count() == len(QUESTIONS)


def test_breaching_soon_question_answered_by_a_doctor_is_kept_and_a_fresh_one_added():
    start = timezone.now()
    seed_demo(start)
    question = breaching_soon().get()
    services.post_answer(question, demo_doctor(), "Keep the ear dry and use the drops for five days.")

    seed_demo(start + timedelta(minutes=10))

    assert breaching_soon().count() == 2
    question.refresh_from_db()
    assert question.status == QuestionStatus.ANSWERED
    fresh = breaching_soon().get(status=QuestionStatus.OPEN)
    assert fresh.clock_warn_at == start + timedelta(minutes=11)


def test_untouched_question_whose_state_drifted_is_moved_back_to_it():
    start = timezone.now()
    seed_demo(start)
    on_track = Question.objects.get(title="Itchy ring-shaped patch on my forearm")
    breached = Question.objects.get(title="Hand eczema flaring despite steroid cream")
    later = start + timedelta(hours=6)
    assert sla.sla_state(on_track, later) == sla.BREACHED

    seed_demo(later)

    on_track.refresh_from_db()
    assert sla.sla_state(on_track, later) == sla.ON_TRACK
    assert on_track.submitted_at > start
    # Still in the state it demonstrates: left exactly as it was.
    assert Question.objects.get(pk=breached.pk).submitted_at == breached.submitted_at
    assert Question.objects.count() == len(QUESTIONS)


def test_question_someone_worked_on_is_never_reset():
    start = timezone.now()
    seed_demo(start)
    question = Question.objects.get(title="Itchy ring-shaped patch on my forearm")
    assert services.claim_question(question.pk, demo_doctor()).ok
    services.post_answer(question, demo_doctor(), "This looks like ringworm; an antifungal cream will clear it.")
    question.refresh_from_db()
    before = Question.objects.filter(pk=question.pk).values().get()

    seed_demo(start + timedelta(days=1))

    assert Question.objects.filter(pk=question.pk).values().get() == before
    assert Question.objects.count() == len(QUESTIONS)


def test_command_prints_a_summary_and_the_demo_logins():
    out = StringIO()
    call_command("seed_demo", stdout=out)
    text = out.getvalue()
    assert "24 created" in text or f"{len(QUESTIONS)} created" in text
    for email in (demo.PATIENT_EMAIL, demo.DOCTOR_EMAIL, demo.STAFF_EMAIL):
        assert email in text
    assert "portal-demo" in text
    assert "Earache since swimming at the weekend" in text


def test_command_refuses_to_create_the_published_logins_in_production(settings):
    settings.PRODUCTION = True
    with pytest.raises(CommandError, match="PRODUCTION"):
        call_command("seed_demo", stdout=StringIO())
    assert not get_user_model().objects.filter(email=demo.STAFF_EMAIL).exists()
    call_command("seed_demo", "--allow-production", stdout=StringIO())
    assert get_user_model().objects.filter(email=demo.STAFF_EMAIL, is_superuser=True).exists()


def test_the_demo_shows_a_breached_question_with_its_apology_notice_and_credit(client, settings):
    """Issue 14: the demo patient has an open question whose breach the sweep has recorded,
    with its credit; late answers carry theirs; seeding again adds none."""
    settings.SLA_BREACH_CREDIT = "free_question"
    now = timezone.now()
    seed_demo(now)
    seed_demo(now + timedelta(minutes=5))

    spec = already_breached()
    question = Question.objects.get(title=spec.title, patient__email=spec.patient)
    assert question.status == QuestionStatus.OPEN and question.breached_at is not None
    assert sla.sla_state(question, now) == sla.BREACHED
    credit = BreachCredit.objects.get(question=question)
    assert (credit.clock_due_at, credit.breached_at, credit.kind) == (
        question.clock_due_at,
        question.breached_at,
        "free_question",
    )
    assert set(question.escalations.values_list("level", flat=True)) == {"at_risk", "breached"}
    missed = Question.objects.filter(first_answered_at__gt=F("due_at"), is_follow_up=False)
    assert missed.count() == 2
    assert BreachCredit.objects.filter(question__in=missed).count() == 2
    assert BreachCredit.objects.count() == 3

    client.force_login(question.patient)
    html = client.get(reverse("consultations:question_detail", args=[question.pk])).content.decode()
    assert "We did not answer in time. We are sorry." in html
    assert "were alerted at" in html
    assert "For the delay we have recorded <strong>a free question</strong> for you." in html

    # The sweep does not breach it again.
    result = sweep.run_sweep(now=now + timedelta(minutes=6))
    assert BreachCredit.objects.filter(question=question).count() == 1
    assert question.pk not in result.question_errors


def test_the_demo_shows_a_doctor_off_duty_a_specialty_nobody_covers_and_schedules():
    """Issue 14: the demo shows every duty state."""
    seed_demo()
    off = DoctorProfile.objects.get(user__email="tomasz.wren@example.com")
    assert off.off_duty and off.duty_periods.exists()
    cardiology = Specialty.objects.get(slug="cardiology")
    general = Specialty.objects.get(slug="general-medicine")
    now = timezone.now()
    # Cardiology: its verified doctor switched off, the other is not verified yet.
    assert not duty.will_anyone_be_on_duty(cardiology, now, now + timedelta(days=8))
    # General Medicine is covered at every hour of the week (a night shift crosses midnight).
    for hour in range(0, 7 * 24):
        assert duty.doctors_on_duty(general, now + timedelta(hours=hour)).exists(), hour
    verified = DoctorProfile.objects.filter(is_verified=True, off_duty=False)
    assert all(doctor.duty_periods.exists() for doctor in verified)
    covers = {cover.specialty.slug: cover for cover in duty.specialties_without_cover(now)}
    assert "cardiology" in covers and covers["cardiology"].fallback == general
