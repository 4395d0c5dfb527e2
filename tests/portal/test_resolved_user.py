"""request.user is the user itself once the middleware has looked them up (portal/middleware.py).

Django's AuthenticationMiddleware puts a lazy proxy there and django-otp wraps it in a
second one; every later read went through both (the ask form's GET and POST read it
about two hundred times between them, 3.6 % of their instructions). The stack now
resolves it once, in SessionIdleTimeoutMiddleware, the first layer that always needs it.
"""

from django.contrib.auth.models import AnonymousUser
from django.urls import reverse
from django.utils.functional import SimpleLazyObject

from portal.middleware import resolved
from portal.models import User


def test_a_signed_in_page_gets_the_user_itself_with_django_otps_attributes(client, patient):
    client.force_login(patient)
    response = client.get(reverse("consultations:ask"))
    assert response.status_code == 200
    user = response.wsgi_request.user
    assert type(user) is User and user.pk == patient.pk
    assert user.is_verified() is False  # django-otp's, set on the user behind its proxy
    assert user.otp_device is None
    assert response.context["user"] is user


def test_an_anonymous_page_gets_the_anonymous_user_itself(client):
    response = client.get(reverse("login"))
    assert response.status_code == 200
    assert type(response.wsgi_request.user) is AnonymousUser


def test_resolved_unwraps_nested_proxies_and_leaves_plain_objects_alone(patient):
    inner = SimpleLazyObject(lambda: patient)
    outer = SimpleLazyObject(lambda: inner)
    assert resolved(outer) is patient
    assert resolved(patient) is patient
