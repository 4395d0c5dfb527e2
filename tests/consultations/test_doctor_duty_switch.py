"""The workbench's duty switch and panel (issue 14, "Who is on duty"): one POST to go on
or off duty, the schedule shown to the doctor, and the count per specialty in the queue."""

from datetime import time, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from consultations.models import DoctorProfile, DutyPeriod, Weekday
from tests.factories import DoctorFactory, UserFactory

pytestmark = pytest.mark.django_db

QUEUE = reverse("doctor_admin:consultations_question_changelist")
SWITCH = reverse("doctor_admin:duty_switch")


@pytest.fixture
def doctor_client(client, doctor):
    client.force_login(doctor.user)
    return client


def test_a_doctor_goes_off_duty_with_one_post(doctor_client, doctor):
    doctor.on_duty_until = timezone.now() + timedelta(hours=2)
    doctor.save()
    response = doctor_client.post(SWITCH, {"on": "0", "next": QUEUE})
    assert response.status_code == 302 and response["Location"] == QUEUE
    doctor.refresh_from_db()
    assert (doctor.off_duty, doctor.on_duty_until) == (True, None)
    html = doctor_client.get(QUEUE).content.decode()
    assert "You switched yourself off duty, so you get no e-mails about new work." in html
    assert 'name="on" value="1"' in html and "Go on duty" in html


def test_a_doctor_goes_on_duty_outside_the_schedule_for_a_while(doctor_client, doctor, settings):
    settings.DUTY_SWITCH_ON_HOURS = 8
    doctor.off_duty = True
    doctor.save()
    doctor_client.post(SWITCH, {"on": "1"})
    doctor.refresh_from_db()
    assert doctor.off_duty is False
    assert abs(doctor.on_duty_until - (timezone.now() + timedelta(hours=8))) < timedelta(minutes=1)
    html = doctor_client.get(QUEUE).content.decode()
    assert "Go off duty" in html and "You are on duty (switched on) until" in html


def test_the_switch_needs_a_post(doctor_client):
    assert doctor_client.get(SWITCH).status_code == 405


def test_the_switch_is_csrf_protected(doctor, client):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(doctor.user)
    assert strict.post(SWITCH, {"on": "0"}).status_code == 403
    assert DoctorProfile.objects.get(pk=doctor.pk).off_duty is False


def test_the_queue_shows_the_schedule_and_who_is_on_duty_per_specialty(doctor_client, doctor, specialty):
    DutyPeriod.objects.create(doctor=doctor, weekday=Weekday.FRIDAY, start=time(22), end=time(6))
    DoctorFactory(
        user=UserFactory(email="colleague@example.com"),
        specialties=[specialty],
        on_duty_until=timezone.now() + timedelta(hours=1),
    )
    html = doctor_client.get(QUEUE).content.decode()
    assert "Friday 22:00-06:00" in html
    assert "Dermatology: <strong>1</strong> doctor on duty" in html


def test_staff_see_the_counts_but_have_no_switch(client, staff, specialty):
    client.force_login(staff)
    html = client.get(QUEUE).content.decode()
    assert "Dermatology: <strong>0</strong> doctors on duty (nobody)" in html
    assert SWITCH not in html
    assert client.post(SWITCH, {"on": "0"}).status_code == 403


def test_staff_edit_the_schedule_on_the_doctors_admin_page(client, staff, doctor):
    DutyPeriod.objects.create(doctor=doctor, weekday=Weekday.MONDAY, start=time(8), end=time(16))
    client.force_login(staff)
    html = client.get(reverse("admin:consultations_doctorprofile_change", args=[doctor.pk])).content.decode()
    assert 'name="duty_periods-TOTAL_FORMS"' in html
    assert 'name="duty_periods-0-start" value="08:00:00"' in html
