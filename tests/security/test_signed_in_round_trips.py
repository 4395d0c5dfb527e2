"""What every signed-in page costs before its view (issue 17): the user and whether they
are a doctor in one query, the session from its copy in the cache."""

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from portal import user_copy
from portal.auth_backends import PortalModelBackend
from portal.two_factor import needs_second_factor
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _copies(settings):
    """As deployed with Redis: sessions and patients' user rows read from copies."""
    settings.SIGNED_IN_COPIES = True
    settings.SESSION_ENGINE = "portal.sessions"
    user_copy.outage.reset()
    yield
    user_copy.outage.reset()


def copied_client(user) -> Client:
    """A signed-in client whose user is now read from the copy (as on any later page)."""
    client = Client()
    client.force_login(user)
    cache.delete(user_copy._key(user.pk))  # the factory's saves marked the copy changed: long ago
    assert client.get(reverse("consultations:my_questions")).status_code == 200
    assert user_copy.read(user.pk) == user
    return client


def test_the_user_and_the_doctor_flag_come_in_one_query(settings, patient, doctor, staff, django_assert_num_queries):
    settings.SIGNED_IN_COPIES = False
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
    settings.SIGNED_IN_COPIES = False
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


def test_a_patients_later_pages_read_neither_session_nor_user_from_the_database(patient, django_assert_num_queries):
    client = copied_client(patient)
    with django_assert_num_queries(1) as queries:  # the profile page's own question: any 2FA app?
        assert client.get("/accounts/profile/").status_code == 200
    assert "otp_totp_totpdevice" in queries.captured_queries[0]["sql"]


def test_the_pages_right_after_signing_in_read_the_copy(patient, django_assert_num_queries):
    """A patient signs in to ask: the login's last_login save must not hold copies back
    (it set a "changed" mark for CHANGED_MARK_SECONDS, so every page of the first 30 s
    read the user row)."""
    cache.delete(user_copy._key(patient.pk))  # the factory's saves marked the copy changed: long ago
    client = Client()
    client.force_login(patient)
    client.get("/accounts/profile/")  # reads the row once (no copy yet) and keeps it
    assert user_copy.read(patient.pk) == patient
    with django_assert_num_queries(1) as queries:  # the profile page's own question only
        assert client.get("/accounts/profile/").status_code == 200
    assert "portal_user" not in queries.captured_queries[0]["sql"].split(" FROM ")[1]


def test_a_login_leaves_a_real_change_s_mark_in_place(patient):
    copied_client(patient)
    patient.set_password("an entirely new one 42")
    patient.save()
    patient.last_login = timezone.now()
    patient.save(update_fields=["last_login"])
    assert cache.get(user_copy._key(patient.pk)) == user_copy.CHANGED
    PortalModelBackend().get_user(patient.pk)  # a page that read the row meanwhile
    assert user_copy.read(patient.pk) is None


def test_a_doctor_is_always_read_from_the_database(doctor, django_assert_num_queries):
    backend = PortalModelBackend()
    backend.get_user(doctor.user.pk)
    with django_assert_num_queries(1):
        assert needs_second_factor(backend.get_user(doctor.user.pk))


def test_a_row_read_before_a_change_is_not_stored_after_it(patient, django_assert_num_queries):
    """The race: a page reads the row, the password changes, then the page stores its copy."""
    old = PortalModelBackend().get_user(patient.pk)  # read and stored
    user_copy.mark_changed(patient.pk)  # a change lands (as a save does)
    user_copy.store(old)  # the slow page stores what it read
    assert user_copy.read(patient.pk) is None
    with django_assert_num_queries(1):
        PortalModelBackend().get_user(patient.pk)


def test_a_patient_made_staff_needs_the_second_factor_on_the_next_page(settings, patient):
    settings.REQUIRE_2FA = True
    client = copied_client(patient)
    patient.is_staff = True
    patient.save()
    response = client.get(reverse("consultations:my_questions"))
    assert response.status_code == 302 and "/accounts/2fa/" in response["Location"]


def test_a_patient_made_a_doctor_needs_the_second_factor_on_the_next_page(settings, patient, specialty):
    from tests.factories import DoctorFactory

    settings.REQUIRE_2FA = True
    client = copied_client(patient)
    DoctorFactory(user=patient, specialties=[specialty])
    response = client.get(reverse("consultations:my_questions"))
    assert response.status_code == 302 and "/accounts/2fa/" in response["Location"]


def test_a_cache_that_cannot_be_reached_leaves_the_database_to_answer(patient, monkeypatch):
    from django.core.cache import caches

    def unreachable(*args, **kwargs):
        raise ConnectionError("cache down")

    for method in ("get", "add", "set"):
        monkeypatch.setattr(caches["default"], method, unreachable)
    assert PortalModelBackend().get_user(patient.pk) == patient


def test_a_password_change_the_copy_cannot_hear_of_is_refused(patient, monkeypatch):
    """Redis unreachable but not restarted would still hold the old copy afterwards."""
    from django.core.cache import caches

    copied_client(patient)
    old_hash = patient.password

    def unreachable(*args, **kwargs):
        raise ConnectionError("cache down")

    monkeypatch.setattr(caches["default"], "set", unreachable)
    patient.set_password("an entirely new one 42")
    with pytest.raises(user_copy.CopyNotMarked):
        patient.save()
    patient.refresh_from_db()
    assert patient.password == old_hash
    patient.last_login = timezone.now()
    patient.save(update_fields=["last_login"])  # a login still works


def test_a_patient_cannot_become_a_doctor_unseen_by_the_copy(patient, specialty, monkeypatch):
    from django.core.cache import caches

    from consultations.models import DoctorProfile
    from tests.factories import DoctorFactory

    copied_client(patient)

    def unreachable(*args, **kwargs):
        raise ConnectionError("cache down")

    monkeypatch.setattr(caches["default"], "set", unreachable)
    with pytest.raises(user_copy.CopyNotMarked):
        DoctorFactory(user=patient, specialties=[specialty])
    assert not DoctorProfile.objects.filter(user=patient).exists()


def test_a_changed_password_signs_the_session_out_on_the_next_page(patient):
    client = copied_client(patient)
    patient.set_password("an entirely new one 42")
    patient.save()
    response = client.get(reverse("consultations:my_questions"))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_a_user_deactivated_meanwhile_is_signed_out_on_the_next_page():
    user = UserFactory(email="leaving@example.com")
    client = copied_client(user)
    user.is_active = False
    user.save()
    assert client.get(reverse("consultations:my_questions")).status_code == 302
