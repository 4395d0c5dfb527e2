"""Signing up without telling anyone whether an address already has an account.

Every valid sign-up gets the same reply ("check your e-mail") and costs the same
(one password hash, one queued message carrying a user id). What happens next
is decided by the worker, by e-mail to the address's owner only:

- a new address: the account is created inactive and marked as a pending sign-up
  (User.signup_pending_since); the e-mail holds a link to
  finish, where the password chosen at sign-up is asked again (so a stranger who
  signed up with someone else's address cannot finish, and the owner who opens
  a stranger's link cannot be handed the stranger's password);
- a pending address (signed up, never finished): the newest sign-up's details
  replace the old ones, whose link stops working (the token covers the password);
- an active account: nothing changes; its owner is told someone tried to sign
  up with their address, with links to log in or reset the password;
- any other inactive account (closed by the clinic, even before its first
  sign-in): nothing changes and no e-mail is sent.

Pending is what a sign-up marked, never inferred from "inactive and never signed
in": that also described staff, superuser and doctor accounts the clinic set up
and closed before their first sign-in, and a sign-up with their address reopened
them with every privilege (a security review's finding).
"""

from django.contrib.auth.hashers import make_password
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.db import IntegrityError, transaction
from django.utils import timezone

from portal.models import User


class ActivationTokenGenerator(PasswordResetTokenGenerator):
    """Django's reset token with its own salt; is_active in the hash makes it single-use."""

    key_salt = "portal.signup.ActivationTokenGenerator"

    def _make_hash_value(self, user, timestamp):
        return f"{super()._make_hash_value(user, timestamp)}{user.is_active}"


activation_token = ActivationTokenGenerator()


def is_pending(user) -> bool:
    """Signed up on the site and never finished: marked so by register(), still inactive
    and never signed in. Belt and braces: an account with any privilege (staff,
    superuser, a doctor profile, groups or permissions of its own) is never pending,
    whatever its mark says; only a marked account costs the queries that look."""
    if user.is_active or user.signup_pending_since is None or user.last_login is not None:
        return False
    if user.is_staff or user.is_superuser:
        return False
    from consultations.models import DoctorProfile

    return not (
        DoctorProfile.objects.filter(user_id=user.pk).exists() or user.groups.exists() or user.user_permissions.exists()
    )


def register(form) -> User:
    """Record a valid sign-up form (SignUpForm); returns the account the e-mail is about."""
    from portal import account_emails

    email = form.cleaned_data["email"]
    user = User.objects.filter(email__iexact=email).first()
    if user is None:
        try:
            with transaction.atomic():
                user = form.save(commit=False)
                user.is_active = False
                user.signup_pending_since = timezone.now()
                user.save()
        except IntegrityError:  # a second sign-up for the same new address won the race
            user = User.objects.get(email__iexact=email)
    elif is_pending(user):
        _replace_pending(user, form)
    else:
        # The same work as a real sign-up, so the reply takes as long.
        make_password(form.cleaned_data["password1"])
    account_emails.queue_signup_email(user.pk)
    return user


def _replace_pending(user, form) -> None:
    data = form.cleaned_data
    user.full_name = data["full_name"]
    user.age = data.get("age")
    user.sex = data.get("sex") or ""
    user.time_zone = form.chosen_time_zone()
    user.set_password(data["password1"])
    user.save(update_fields=["full_name", "age", "sex", "time_zone", "password"])


def activate(user) -> None:
    user.is_active = True
    user.signup_pending_since = None
    user.save(update_fields=["is_active", "signup_pending_since"])
