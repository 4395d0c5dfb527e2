"""The duty rule's kept answer (consultations.cover_cache, issue 17): reused while nothing
it reads was written and no duty boundary has come, never after."""

from datetime import UTC, datetime, time, timedelta

import pytest
from django.contrib.admin.sites import site
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from consultations import cover_cache, duty, services
from consultations.models import DoctorProfile, DutyPeriod, Notification, Weekday
from tests.factories import DoctorFactory, UserFactory

pytestmark = pytest.mark.django_db

# Monday 5 January 2026, 18:00 UTC; the window is 4 hours (fixture `window`).
NOW = datetime(2026, 1, 5, 18, 0, tzinfo=UTC)


@pytest.fixture
def window(settings):
    settings.SLA_ANSWER_HOURS = 4


@pytest.fixture
def cardiologist(other_specialty, window):
    """Cardiology's only doctor works Tuesdays 08:00-16:00 (UTC)."""
    doctor = DoctorFactory(user=UserFactory(email="cardio@example.com", time_zone="UTC"), specialties=[other_specialty])
    DutyPeriod.objects.create(doctor=doctor, weekday=Weekday.TUESDAY, start=time(8), end=time(16))
    return doctor


def uncovered(now) -> set:
    return {cover.specialty.slug for cover in cover_cache.specialties_without_cover(now)}


def queries(call) -> int:
    with CaptureQueriesContext(connection) as captured:
        call()
    return len(captured)


def test_the_answer_is_worked_out_once_and_then_kept(cardiologist):
    assert queries(lambda: uncovered(NOW)) == 4
    assert queries(lambda: uncovered(NOW + timedelta(minutes=1))) == 0
    assert uncovered(NOW + timedelta(minutes=1)) == {"cardiology"}


def test_each_showing_gets_its_own_due_time(cardiologist):
    [first] = cover_cache.specialties_without_cover(NOW)
    [later] = cover_cache.specialties_without_cover(NOW + timedelta(minutes=7))
    assert first.due_at == NOW + timedelta(hours=4)
    assert later.due_at == NOW + timedelta(hours=4, minutes=7)


def test_the_specialties_come_from_the_same_kept_answer(cardiologist, specialty, other_specialty):
    """The ask post's choices: the kept answer's, no query once it is kept, a new
    specialty seen at once (its save gives the roster a new version)."""
    assert [s.pk for s in cover_cache.specialties(NOW)] == [s.pk for s in duty.roster_at(NOW).specialties]
    assert queries(lambda: cover_cache.specialties(NOW + timedelta(minutes=1))) == 0
    assert {s.slug for s in cover_cache.specialties(NOW)} == {specialty.slug, other_specialty.slug}
    added = type(specialty).objects.create(name="Neurology", slug="neurology")
    assert added.pk in {s.pk for s in cover_cache.specialties(NOW)}


def test_the_answer_ends_when_a_duty_boundary_enters_the_window(cardiologist):
    """Tuesday 08:00 reaches the end of the 4-hour window at 04:00: just after, Cardiology is covered."""
    assert uncovered(datetime(2026, 1, 6, 3, 30, tzinfo=UTC)) == {"cardiology"}
    assert queries(lambda: uncovered(datetime(2026, 1, 6, 3, 59, tzinfo=UTC))) == 0
    assert queries(lambda: uncovered(datetime(2026, 1, 6, 4, 0, tzinfo=UTC))) > 0  # worked out again
    assert uncovered(datetime(2026, 1, 6, 4, 0, 1, tzinfo=UTC)) == set()


def test_unchanged_until_names_the_first_boundary_to_leave_or_enter_a_range(cardiologist):
    doctor = DoctorProfile.objects.select_related("user").get(pk=cardiologist.pk)
    tuesday_night = datetime(2026, 1, 6, 2, 0, tzinfo=UTC)
    far = tuesday_night + timedelta(days=30)
    # 08:00 enters the 4-hour window at 04:00.
    assert duty.unchanged_until([doctor], tuesday_night, timedelta(hours=4), far) == datetime(2026, 1, 6, 4, tzinfo=UTC)
    # During the shift, its end (16:00) reaches the end of a 30-minute window at 15:30.
    during = datetime(2026, 1, 6, 15, 0, tzinfo=UTC)
    assert duty.unchanged_until([doctor], during, timedelta(minutes=30), far) == datetime(
        2026, 1, 6, 15, 30, tzinfo=UTC
    )
    # On Wednesday next Tuesday's shift is already within the week ahead: the window reaching it is next.
    wednesday = datetime(2026, 1, 7, 9, 0, tzinfo=UTC)
    next_tuesday = datetime(2026, 1, 13, 4, tzinfo=UTC)
    assert duty.unchanged_until([doctor], wednesday, timedelta(hours=4), far) == next_tuesday
    # Nothing to wait for: the cap.
    assert duty.unchanged_until([], wednesday, timedelta(hours=4), far) == far


def test_a_doctor_switching_on_duty_is_seen_at_once(cardiologist, other_specialty):
    assert uncovered(NOW) == {"cardiology"}
    assert not cover_cache.anyone_on_duty_now(other_specialty.pk, NOW)

    duty.switch_on_duty(cardiologist, NOW)

    assert uncovered(NOW) == set()
    assert cover_cache.anyone_on_duty_now(other_specialty.pk, NOW)


def test_a_new_question_reaches_a_doctor_who_just_switched_on(cardiologist, other_specialty, patient):
    uncovered(NOW)  # nobody on duty: kept
    duty.switch_on_duty(cardiologist, NOW)
    services.submit_question(
        patient=patient, specialty=other_specialty, title="Palpitations", description="Since noon.", age=40,
        sex="female", now=NOW,
    )  # fmt: skip
    assert list(Notification.objects.filter(kind="new_question").values_list("to_email", flat=True)) == [
        "cardio@example.com"
    ]


def test_nobody_on_duty_means_no_doctor_is_read_for_a_new_question(cardiologist, other_specialty, patient):
    uncovered(NOW)
    with CaptureQueriesContext(connection) as captured:
        services.submit_question(
            patient=patient, specialty=other_specialty, title="Palpitations", description="Since noon.", age=40,
            sex="female", now=NOW,
        )  # fmt: skip
    assert not [q for q in captured.captured_queries if "consultations_doctorprofile" in q["sql"]]
    assert not Notification.objects.filter(kind="new_question").exists()


@pytest.mark.parametrize(
    "write",
    [
        pytest.param(lambda doctor: DutyPeriod.objects.filter(doctor=doctor).delete(), id="period deleted"),
        pytest.param(
            lambda doctor: DutyPeriod.objects.create(
                doctor=doctor, weekday=Weekday.MONDAY, start=time(17), end=time(23)
            ),
            id="period added",
        ),
        pytest.param(lambda doctor: doctor.specialties.clear(), id="specialty link removed"),
        pytest.param(lambda doctor: setattr(doctor, "is_verified", False) or doctor.save(), id="profile saved"),
        pytest.param(lambda doctor: setattr(doctor.user, "is_active", False) or doctor.user.save(), id="account saved"),
    ],
)
def test_every_write_the_rule_reads_forgets_the_answer(cardiologist, write):
    uncovered(NOW)
    write(cardiologist)
    assert queries(lambda: uncovered(NOW)) > 0  # worked out again


def test_a_login_does_not_forget_the_answer(cardiologist):
    uncovered(NOW)
    cardiologist.user.save(update_fields=["last_login"])
    assert queries(lambda: uncovered(NOW)) == 0


def test_a_renamed_specialty_is_shown_by_its_new_name(cardiologist, other_specialty):
    uncovered(NOW)
    other_specialty.name, other_specialty.slug = "Heart", "heart"
    other_specialty.save()
    assert uncovered(NOW) == {"heart"}


def test_verifying_in_the_admin_forgets_the_answer(cardiologist, other_specialty, staff):
    DoctorProfile.objects.filter(pk=cardiologist.pk).update(is_verified=False, on_duty_until=NOW + timedelta(hours=1))
    cover_cache.forget()
    assert not cover_cache.anyone_on_duty_now(other_specialty.pk, NOW)
    request = RequestFactory().post("/")
    request.user = staff
    request._messages = type("Messages", (), {"add": lambda *args, **kwargs: None})()
    site._registry[DoctorProfile].mark_verified(request, DoctorProfile.objects.filter(pk=cardiologist.pk))
    assert cover_cache.anyone_on_duty_now(other_specialty.pk, NOW)


def test_an_answer_worked_out_under_an_older_version_is_not_used(cardiologist):
    """A showing that read the roster before a write committed stores its answer under the
    version it saw first; the commit's new version makes that answer unused."""
    uncovered(NOW)
    cover_cache._new_version()  # what a commit after that read does
    assert queries(lambda: uncovered(NOW)) == 4


def test_an_answer_is_not_kept_past_its_bound_for_writes_made_outside_django(cardiologist, monkeypatch):
    uncovered(NOW)
    DutyPeriod.objects.filter(doctor=cardiologist).update(weekday=Weekday.MONDAY)  # no signal
    later = cover_cache.time.time() + cover_cache.COVER_CACHE_SECONDS
    monkeypatch.setattr(cover_cache.time, "time", lambda: later)
    assert queries(lambda: uncovered(NOW)) > 0


class _DownCache:
    """A cache every call to which fails, as when Redis cannot be reached; counts the calls."""

    def __init__(self):
        self.tries = 0

    def __getattr__(self, name):
        def fail(*args, **kwargs):
            self.tries += 1
            raise ConnectionError("cache down")

        return fail


def test_after_one_failure_the_roster_does_not_wait_on_the_cache_again(cardiologist, monkeypatch):
    """A hung Redis costs REDIS_TIMEOUT_SECONDS per try: after one, the shared outage sends
    the next showings straight to the database."""
    down = _DownCache()
    monkeypatch.setattr(cover_cache, "cache", down)

    for _ in range(3):
        assert uncovered(NOW) == {"cardiology"}
    assert down.tries == 1


def test_a_roster_write_during_an_outage_still_renews_the_version(cardiologist, monkeypatch):
    """Redis may be back before the outage pause ends: a write's new version is tried anyway."""
    from portal.cache_outage import outage

    outage.failed("a test", TimeoutError("earlier"))
    before = cover_cache.cache.get(cover_cache.VERSION_KEY)
    cover_cache.forget()
    assert cover_cache.cache.get(cover_cache.VERSION_KEY) not in (None, before)


def test_the_ask_form_and_a_question_work_with_the_cache_down(patient, other_specialty, cardiologist, monkeypatch):
    monkeypatch.setattr(cover_cache, "cache", _DownCache())
    duty.switch_on_duty(cardiologist, NOW)  # the version cannot be renewed: no error either
    assert uncovered(NOW) == set()
    services.submit_question(
        patient=patient, specialty=other_specialty, title="Palpitations", description="Since noon.", age=40,
        sex="female", now=NOW,
    )  # fmt: skip
    assert Notification.objects.filter(kind="new_question").count() == 1


# --- One version read per web request ----------------------------------------------------


class _CountingCache:
    """The real cache, counting the reads of the roster's version key."""

    def __init__(self, real):
        self.real, self.version_reads = real, 0

    def get(self, key, *args, **kwargs):
        if key == cover_cache.VERSION_KEY:
            self.version_reads += 1
        return self.real.get(key, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.real, name)


@pytest.fixture
def counting(monkeypatch):
    counting = _CountingCache(cover_cache.cache)
    monkeypatch.setattr(cover_cache, "cache", counting)
    return counting


def test_a_question_post_reads_the_roster_version_once(client, patient, other_specialty, cardiologist, counting):
    """The form's specialties and the doctors on duty to tell come from one read (two before)."""
    client.force_login(patient)
    data = {
        "specialty": str(other_specialty.pk),
        "title": "Palpitations after coffee",
        "description": "My heart races for an hour after my morning coffee.",
        "age": "40",
        "sex": "female",
        "consent": "on",
    }
    response = client.post(reverse("consultations:ask"), data)
    assert response.status_code == 302
    assert counting.version_reads == 1
    client.get(reverse("consultations:ask"))  # the next request reads it again
    assert counting.version_reads == 2


def test_outside_a_request_every_use_reads_the_version(cardiologist, counting):
    """Tasks and commands (no request): a roster changed by another process is seen at once."""
    uncovered(NOW)
    uncovered(NOW)
    assert counting.version_reads == 2


def test_a_request_sees_its_own_roster_write_and_not_after_it_ends(cardiologist, other_specialty, counting):
    # What request_started and request_finished call (sending those signals here would also
    # close the test's database connection, Django's close_old_connections).
    cover_cache._request_started()
    try:
        assert uncovered(NOW) == {"cardiology"}
        duty.switch_on_duty(cardiologist, NOW)  # a write in this request: a new version
        assert uncovered(NOW) == set()
        assert counting.version_reads == 1
    finally:
        cover_cache._request_finished()
    uncovered(NOW)
    assert counting.version_reads == 2
