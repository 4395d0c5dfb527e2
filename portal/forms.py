"""Account forms: sign up, log in by e-mail, the patient's profile, confirming the password."""

import logging
import zoneinfo
from functools import cache

from django import forms
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm, BaseUserCreationForm, PasswordChangeForm, PasswordResetForm
from django.urls import reverse
from django.utils.html import format_html

from portal import account_emails
from portal.models import Sex, User, time_zone_choices

logger = logging.getLogger(__name__)


def note_wrong_password(user, where: str) -> None:
    """One line per wrong current password typed in a signed-in session: many in a row
    mean a stolen session guessing the password (staff can alert on "wrong current password")."""
    logger.warning("Wrong current password on %s for user %s", where, user.pk)


@cache
def known_time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def is_known_time_zone(name: str) -> bool:
    return name in known_time_zones()


AGE_ERRORS = {
    "invalid": "Enter your age as a whole number of years, e.g. 34.",
    "min_value": "Age cannot be below 0.",
    "max_value": "Age must be 120 or below.",
}


def _age_field(**kwargs) -> forms.IntegerField:
    return forms.IntegerField(min_value=0, max_value=120, required=False, error_messages=AGE_ERRORS, **kwargs)


def _sex_field(**kwargs) -> forms.ChoiceField:
    return forms.ChoiceField(choices=[("", "Prefer not to say"), *Sex.choices], required=False, **kwargs)


class SignUpForm(BaseUserCreationForm):
    """A patient's account. The time zone is detected by the browser (site.js fills
    `detected_time_zone`); the visible list is the fallback and wins when chosen."""

    detected_time_zone = forms.CharField(required=False, widget=forms.HiddenInput)
    time_zone = forms.ChoiceField(
        label="Time zone",
        required=False,
        help_text="Answer times are shown in this time zone. Leave it to detect it from your browser.",
    )
    age = _age_field(help_text="Optional. Filled in for you when you ask a question.")
    sex = _sex_field(help_text="Optional. Filled in for you when you ask a question.")
    accept_terms = forms.BooleanField(
        label="I accept the terms",
        error_messages={"required": "You need to accept the terms of use and the privacy policy to sign up."},
    )

    class Meta:
        model = User
        fields = ("email", "full_name", "age", "sex")
        labels = {"email": "E-mail address", "full_name": "Full name"}
        help_texts = {"full_name": "Only you see it; doctors see a patient number instead."}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["full_name"].required = True
        self.fields["full_name"].error_messages["required"] = "Enter your name."
        self.fields["email"].error_messages["required"] = "Enter your e-mail address."
        self.fields["email"].widget.attrs["autocomplete"] = "email"
        self.fields["time_zone"].choices = [("", "Detect automatically"), *time_zone_choices()]
        self.fields["accept_terms"].label = format_html(
            'I accept the <a href="{}" target="_blank" rel="noopener">terms of use</a> and the '
            '<a href="{}" target="_blank" rel="noopener">privacy policy</a>, and I understand this is not an '
            "emergency service.",
            reverse("terms"),
            reverse("privacy"),
        )

    def clean_email(self):
        # Whether the address has an account is never said here (portal/signup.py).
        return self.cleaned_data["email"].strip().lower()

    def validate_unique(self):
        # The model's "already exists" error would tell anyone who has an account.
        pass

    def clean_time_zone(self):
        return self.cleaned_data.get("time_zone") or ""

    def chosen_time_zone(self) -> str:
        """The list's choice, else what the browser detected, else the site's zone."""
        chosen = self.cleaned_data.get("time_zone")
        detected = (self.cleaned_data.get("detected_time_zone") or "").strip()
        for name in (chosen, detected):
            if name and is_known_time_zone(name):
                return name
        return settings.TIME_ZONE

    def save(self, commit=True):
        user = super().save(commit=False)
        user.time_zone = self.chosen_time_zone()
        if commit:
            user.save()
        return user


# No account's e-mail is longer (the User model's column); django-axes records the name
# tried in a 255-character column, so a longer one must never reach authentication.
LOGIN_NAME_MAX_LENGTH = 254


class LoginNameLengthMixin:
    """For every login form (the site's and both admins'): an over-long e-mail is a
    form error next to the field, before authentication (Django's AuthenticationForm
    sets max_length on the field too late for it to be validated)."""

    def clean_username(self):
        username = self.cleaned_data.get("username") or ""
        if len(username) > LOGIN_NAME_MAX_LENGTH:
            raise forms.ValidationError(
                f"An e-mail address has at most {LOGIN_NAME_MAX_LENGTH} characters. Check what you typed.",
                code="max_length",
            )
        return username


class EmailAuthenticationForm(LoginNameLengthMixin, AuthenticationForm):
    """Django's login form, asking for the e-mail address the account was made with."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": "That e-mail address and password do not match an account. Check both and try again.",
    }

    # Patients only (portal/session_policy.py); the login template words it.
    remember_me = forms.BooleanField(label="Keep me signed in on this device", required=False)

    def __init__(self, request=None, *args, **kwargs):
        super().__init__(request, *args, **kwargs)
        self.fields["username"].label = "E-mail address"
        self.fields["username"].widget = forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"})


class ProfileForm(forms.ModelForm):
    age = _age_field(help_text="Filled in for you when you ask a question.")
    sex = _sex_field(help_text="Filled in for you when you ask a question.")

    class Meta:
        model = User
        fields = ("full_name", "age", "sex", "time_zone")
        labels = {"full_name": "Full name", "time_zone": "Time zone"}
        help_texts = {
            "full_name": "Only you see it; doctors see your patient number instead.",
            "time_zone": "Answer times and countdowns are shown in this time zone.",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["full_name"].required = True
        self.fields["full_name"].error_messages["required"] = "Enter your name."


class ConfirmPasswordForm(forms.Form):
    """The current password, asked before an action that affects every device."""

    password = forms.CharField(
        label="Your password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        error_messages={"required": "Enter your password to confirm."},
    )

    def __init__(self, user, *args, **kwargs):
        self.user = user
        super().__init__(*args, **kwargs)

    def clean_password(self):
        password = self.cleaned_data["password"]
        if not self.user.check_password(password):
            note_wrong_password(self.user, "sign out other devices")
            raise forms.ValidationError("That is not your current password. Nothing was changed.")
        return password


class FinishSignUpForm(ConfirmPasswordForm):
    """The password chosen at sign-up, asked again when the e-mailed link is opened."""

    def clean_password(self):
        password = self.cleaned_data["password"]
        if not self.user.check_password(password):
            note_wrong_password(self.user, "finish sign-up")
            raise forms.ValidationError(
                "That is not the password chosen at sign-up. If you signed up more than once, "
                "use the link in the newest e-mail."
            )
        return password


class CountedPasswordChangeForm(PasswordChangeForm):
    """Django's password change, logging each wrong current password (the view is rate limited)."""

    def clean_old_password(self):
        try:
            return super().clean_old_password()
        except forms.ValidationError:
            note_wrong_password(self.user, "password change")
            raise


class QueuedPasswordResetForm(PasswordResetForm):
    """Django's reset form, but the e-mail is made and sent by a worker (portal/account_emails.py).

    Known address or not, the request does the same work: one look-up, one queued
    message carrying a user id (or None), so neither the reply nor its timing tells
    whether an account exists.
    """

    def save(self, **kwargs):
        ids = [user.pk for user in self.get_users(self.cleaned_data["email"])]
        for user_id in ids or [None]:
            account_emails.queue_password_reset(user_id)
