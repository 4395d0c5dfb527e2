"""E-mails that carry a secret link (password reset, finishing a sign-up) or that would
tell whether an address has an account, sent by a worker, never from the request.

The request only looks the address up and queues the user's id; the worker makes
the one-time link there and then. So the reply takes as long for an unknown
address as for a known one, and no usable link is ever written to the database
(the outbox stores bodies) or to the broker. Links start with SITE_URL, never
with the Host header a visitor sent.
"""

import logging

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.tokens import default_token_generator
from django.core.mail import send_mail
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

logger = logging.getLogger(__name__)


def absolute_url(path: str) -> str:
    return f"{settings.SITE_URL}{path}"


def password_reset_url(user) -> str:
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    token = default_token_generator.make_token(user)
    return absolute_url(reverse("password_reset_confirm", kwargs={"uidb64": uid, "token": token}))


def may_reset_password(user) -> bool:
    """Django's own rule (PasswordResetForm.get_users): active, with a usable password."""
    return user.is_active and user.has_usable_password()


def send_password_reset(user_id: int | None) -> bool:
    """Run by the worker: e-mail the user a fresh reset link. None (an address that
    matched no account: queued all the same, so both replies cost the same) sends nothing."""
    if user_id is None:
        return False
    user = get_user_model().objects.filter(pk=user_id).first()
    if user is None or not may_reset_password(user):
        return False
    context = {"email": user.email, "reset_url": password_reset_url(user)}
    subject = "".join(render_to_string("registration/password_reset_subject.txt", context).splitlines())
    body = render_to_string("registration/password_reset_email.txt", context)
    send_mail(subject, body, None, [user.email])
    return True


def queue_password_reset(user_id: int | None) -> None:
    """Publish one message per request, known address or not; a broker outage loses
    this e-mail (the person asks again) rather than keeping a reset link anywhere."""
    from portal.tasks import send_password_reset_email

    try:
        send_password_reset_email.delay(user_id)
    except Exception:  # noqa: BLE001 - any broker failure: the reply must not differ
        logger.warning("Broker unavailable: a password reset e-mail was not queued", exc_info=True)


def signup_url(user) -> str:
    from portal.signup import activation_token

    uid = urlsafe_base64_encode(force_bytes(user.pk))
    return absolute_url(reverse("signup_confirm", kwargs={"uidb64": uid, "token": activation_token.make_token(user)}))


def send_signup_email(user_id: int) -> str | None:
    """Run by the worker after any sign-up: the link to finish a pending account, or,
    for an account that already exists, a note to its owner. Returns which was sent."""
    from portal.signup import is_pending

    user = get_user_model().objects.filter(pk=user_id).first()
    if user is None:
        return None
    if is_pending(user):
        kind, context = "signup_finish", {"email": user.email, "finish_url": signup_url(user)}
    elif user.is_active:
        kind = "signup_existing"
        context = {
            "email": user.email,
            "login_url": absolute_url(reverse("login")),
            "reset_url": absolute_url(reverse("password_reset")),
        }
    else:
        return None  # closed by the clinic: nothing to say by e-mail
    subject = "".join(render_to_string(f"registration/{kind}_subject.txt", context).splitlines())
    send_mail(subject, render_to_string(f"registration/{kind}_email.txt", context), None, [user.email])
    return kind


def queue_signup_email(user_id: int) -> None:
    from portal.tasks import send_signup_email as task

    try:
        task.delay(user_id)
    except Exception:  # noqa: BLE001 - the person signs up again; the reply must not differ
        logger.warning("Broker unavailable: a sign-up e-mail was not queued", exc_info=True)
