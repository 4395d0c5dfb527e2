"""Doctors and staff who log in on the public login page land on their own tools, and
the header links them (issue 15, "Doctors and staff")."""

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from consultations.access import home_url_name, work_links
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


def staff_member(*codenames, email="ops@example.com"):
    user = UserFactory(email=email, is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return user


def log_in(client, user, **extra):
    return client.post(reverse("login"), {"username": user.email, "password": PASSWORD, **extra})


def test_a_doctor_lands_on_the_queue(client, doctor):
    assert log_in(client, doctor.user).url == reverse("doctor_admin:index")


def test_staff_with_the_dashboard_permission_land_on_the_dashboard(client):
    assert log_in(client, staff_member("view_sla_dashboard")).url == reverse("staff:sla_dashboard")


def test_other_staff_land_on_the_staff_admin(client):
    assert log_in(client, staff_member("view_article")).url == reverse("admin:index")


def test_a_patient_lands_on_their_questions(client, patient):
    assert log_in(client, patient).url == reverse("consultations:my_questions")


def test_next_still_wins_over_the_role_home(client, doctor):
    next_url = reverse("articles:list")
    assert log_in(client, doctor.user, next=next_url).url == next_url


def test_an_unverified_doctor_is_a_patient_here(client, unverified_doctor):
    assert home_url_name(unverified_doctor.user) == "consultations:my_questions"
    assert work_links(unverified_doctor.user) == []


def test_clinical_staff_get_every_tool_they_may_open(staff):
    assert [label for label, _ in work_links(staff)] == ["SLA dashboard", "Staff admin", "Doctors' workbench"]


def test_the_header_links_a_doctor_to_the_queue(client, doctor):
    client.force_login(doctor.user)
    html = client.get(reverse("consultations:my_questions")).content.decode()
    assert f'href="{reverse("doctor_admin:index")}">Question queue</a>' in html


def test_the_header_links_staff_to_the_dashboard_and_the_admin(client, staff):
    client.force_login(staff)
    html = client.get(reverse("consultations:my_questions")).content.decode()
    assert f'href="{reverse("staff:sla_dashboard")}">SLA dashboard</a>' in html
    assert f'href="{reverse("admin:index")}">Staff admin</a>' in html


def test_a_patients_header_has_no_staff_tools(client, patient):
    client.force_login(patient)
    html = client.get(reverse("consultations:my_questions")).content.decode()
    assert "Question queue" not in html and "Staff admin" not in html and "SLA dashboard" not in html


def test_the_dashboard_has_the_staff_navigation_not_the_patient_site(client, staff):
    client.force_login(staff)
    html = client.get(reverse("staff:sla_dashboard")).content.decode()
    assert 'aria-label="Staff"' in html
    assert f'href="{reverse("admin:index")}">Staff admin</a>' in html
    assert f'href="{reverse("staff:sla_export")}?period=' in html
    assert 'aria-current="page">SLA dashboard</a>' in html
    # The patient site's own menu and footer are not there.
    assert 'aria-label="Main"' not in html and "Not an emergency service" not in html
    assert f'href="{reverse("consultations:ask")}"' not in html
