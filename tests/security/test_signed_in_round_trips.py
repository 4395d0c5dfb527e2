"""What every signed-in page costs before its view (issue 17): the user and whether they
are a doctor in one query, the session from its copy in the cache."""

import pytest
from django.contrib.auth.models import AnonymousUser
from django.test import Client
from django.urls import reverse

from portal.auth_backends import PortalModelBackend
from portal.two_factor import needs_second_factor
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_the_user_and_the_doctor_flag_come_in_one_query(patient, doctor, staff, django_assert_num_queries):
    backend = PortalModelBackend()
    for person, second_factor in ((patient, False), (doctor.user, True), (staff, True)):
        with django_assert_num_queries(1):
            user = backend.get_user(person.pk)
            assert needs_second_factor(user) is second_factor
    assert not needs_second_factor(AnonymousUser())


def test_a_deactivated_user_is_not_signed_in(patient):
    patient.is_active = False
    patient.save()
    assert PortalModelBackend().get_user(patient.pk) is None
    assert PortalModelBackend().get_user(10**9) is None


def test_a_signed_in_page_asks_the_database_for_the_user_only(settings, patient, django_assert_num_queries):
    settings.SESSION_ENGINE = "portal.sessions"
    client = Client()
    client.force_login(patient)
    client.get("/accounts/profile/")  # the idle end is pushed at most once a minute: done here
    # The profile page reads nothing but the user (and the 2FA apps of a doctor).
    with django_assert_num_queries(2) as queries:
        response = client.get("/accounts/profile/")
    assert response.status_code == 200
    tables = [query["sql"].split(" FROM ")[1].split(" ")[0] for query in queries.captured_queries]
    assert tables[0] == '"portal_user"' and "django_session" not in " ".join(tables)


def test_a_changed_password_signs_the_session_out_on_the_next_page(settings, patient):
    settings.SESSION_ENGINE = "portal.sessions"
    client = Client()
    client.force_login(patient)
    assert client.get(reverse("consultations:my_questions")).status_code == 200
    patient.set_password("an entirely new one 42")
    patient.save()
    response = client.get(reverse("consultations:my_questions"))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_a_user_deactivated_meanwhile_is_signed_out_on_the_next_page(settings):
    settings.SESSION_ENGINE = "portal.sessions"
    user = UserFactory(email="leaving@example.com")
    client = Client()
    client.force_login(user)
    assert client.get(reverse("consultations:my_questions")).status_code == 200
    user.is_active = False
    user.save()
    assert client.get(reverse("consultations:my_questions")).status_code == 302
