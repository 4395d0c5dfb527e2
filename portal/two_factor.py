"""Two-factor authentication (TOTP) for doctors and staff.

When REQUIRE_2FA is on (the default with PRODUCTION=true), a doctor or staff
member whose session is not verified with a one-time code is sent to set up an
authenticator app (first time) or to enter a code, before any other page.

Who may pair an app: a session already verified with one of the user's apps, or,
for the very first app, the signed-in user (the first-login flow). A password
alone never pairs a second app. The secret being paired belongs to the session
that asked for it and is shown to no other. Every pairing and removal is e-mailed
to the account's owner (never the secret); staff reset a user's apps from the admin.
"""

from base64 import b32encode
from datetime import timedelta

import segno
from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST
from django_otp import login as otp_login
from django_otp import match_token, user_has_device
from django_otp.plugins.otp_totp.models import TOTPDevice

from consultations.notifications import queue_notification
from portal.redirects import safe_next, with_next

DEVICE_NAME = "Authenticator app"
# The session key holding the id of the app this session is pairing.
PENDING_SESSION_KEY = "two_factor_pending_device"
# A pairing left unfinished this long is started afresh (and old ones deleted).
PENDING_MAX_AGE = timedelta(hours=1)


def needs_second_factor(user) -> bool:
    """Doctors and staff handle patients' data: they must use a second factor."""
    if not user.is_authenticated:
        return False
    return user.is_staff or hasattr(user, "doctor_profile")


def _verify_url(next_url: str) -> str:
    return with_next(reverse("two_factor_verify"), next_url)


# --- The rules -------------------------------------------------------------------------------


def confirmed_devices(user):
    return TOTPDevice.objects.filter(user=user, confirmed=True).order_by("created_at", "pk")


def may_add_device(request) -> bool:
    """A first app with the password alone; any further app only from a session
    verified with one the user already has (else a stolen password pairs its own)."""
    return request.user.is_verified() or not user_has_device(request.user)


def pending_device(request, now=None) -> TOTPDevice:
    """The app this session is pairing, created on first use. Its secret lives in a
    row that only this session knows the id of, so no other session ever sees it."""
    now = now or timezone.now()
    pk = request.session.get(PENDING_SESSION_KEY)
    device = None
    if pk is not None:
        device = TOTPDevice.objects.filter(
            pk=pk, user=request.user, confirmed=False, created_at__gte=now - PENDING_MAX_AGE
        ).first()
    if device is None:
        TOTPDevice.objects.filter(user=request.user, confirmed=False, created_at__lt=now - PENDING_MAX_AGE).delete()
        device = TOTPDevice.objects.create(user=request.user, name=DEVICE_NAME, confirmed=False)
        request.session[PENDING_SESSION_KEY] = device.pk
    return device


def confirm_device(request, device: TOTPDevice, name: str) -> bool:
    """Pair the pending app: re-check the rule under a lock on the user (two sessions
    racing to pair a "first" app), mark it confirmed, verify this session, tell the owner."""
    with transaction.atomic():
        get_user_model().objects.select_for_update().filter(pk=request.user.pk).first()
        if not may_add_device(request):
            return False
        device.confirmed = True
        device.name = name or DEVICE_NAME
        device.save(update_fields=["confirmed", "name"])
        _notify(device.user, "two_factor_device_added", device.name, f"2fa-added:{device.pk}")
    request.session.pop(PENDING_SESSION_KEY, None)
    otp_login(request, device)
    return True


def remove_device(device: TOTPDevice) -> None:
    """Remove one of the user's apps and tell them. A session verified with it is no
    longer verified (django-otp checks the device on each request)."""
    user, name, pk, confirmed = device.user, device.name, device.pk, device.confirmed
    device.delete()
    if confirmed:  # an unfinished pairing never opened anything
        _notify(user, "two_factor_device_removed", name, f"2fa-removed:{pk}")


def reset_devices(user) -> int:
    """Staff's reset: every app of the user goes (paired or pending). With REQUIRE_2FA
    the user pairs a new one at their next page, in the first-login flow."""
    names = list(confirmed_devices(user).values_list("name", flat=True))
    removed, _ = TOTPDevice.objects.filter(user=user).delete()
    if names:
        stamp = timezone.now().strftime("%Y%m%dT%H%M%S.%f")
        _notify(user, "two_factor_devices_reset", ", ".join(names), f"2fa-reset:{user.pk}:{stamp}")
    return len(names)


def _notify(user, kind: str, device_name: str, dedupe_key: str) -> None:
    # The outbox stores the rendered e-mail: it carries the app's name and a link, never its secret.
    queue_notification(
        recipient=user,
        to_email=user.email,
        kind=kind,
        context={
            "device_name": device_name,
            "devices_url": f"{settings.SITE_URL}{reverse('two_factor_devices')}",
            "at": timezone.now(),
        },
        dedupe_key=dedupe_key,
    )


# --- The pages ---------------------------------------------------------------------------------


class TokenForm(forms.Form):
    token = forms.RegexField(
        regex=r"^\s*\d{6}\s*$",
        label="Six-digit code from your authenticator app",
        error_messages={"invalid": "Enter the six digits shown in your authenticator app."},
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}),
    )

    def clean_token(self):
        return self.cleaned_data["token"].strip()


class SetupForm(TokenForm):
    name = forms.CharField(
        label="A name for this app (optional)",
        required=False,
        max_length=64,
        help_text="For example “Work phone”. It helps you tell your apps apart later.",
    )
    field_order = ["name", "token"]


@login_required
def setup(request):
    """Pair an authenticator app: show the QR code, confirm with a first code."""
    if not may_add_device(request):
        messages.info(
            request, "You already use an authenticator app. Enter a code from it first; then you can add another."
        )
        return redirect(_verify_url(reverse("two_factor_setup")))
    device = pending_device(request)
    form = SetupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        allowed, _ = device.verify_is_allowed()
        if not allowed:
            # django-otp slows down guessing: each failure doubles the wait.
            form.add_error("token", "Too many wrong codes. Wait a few seconds and try the newest code.")
        elif device.verify_token(form.cleaned_data["token"]):
            if confirm_device(request, device, form.cleaned_data["name"].strip()):
                return redirect(safe_next(request, default="/"))
            return redirect(_verify_url(reverse("two_factor_setup")))
        else:
            form.add_error("token", "That code did not match. Check the time on your phone and try the newest code.")
    qr = segno.make(device.config_url, error="m").svg_data_uri(scale=5, border=2)
    context = {
        "form": form,
        "qr_data_uri": qr,
        "secret": b32encode(device.bin_key).decode(),
        "next": safe_next(request),
        "adding_another": user_has_device(request.user),
    }
    return render(request, "two_factor/setup.html", context)


@login_required
def verify(request):
    """Ask for a code from an already paired device."""
    if not user_has_device(request.user):
        return redirect(with_next(reverse("two_factor_setup"), safe_next(request, default="/")))
    form = TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        device = match_token(request.user, form.cleaned_data["token"])
        if device is not None:
            otp_login(request, device)
            return redirect(safe_next(request, default="/"))
        form.add_error("token", "That code is not valid or was already used. Try the newest code.")
    return render(request, "two_factor/verify.html", {"form": form, "next": safe_next(request)})


@login_required
def devices(request):
    """The user's paired apps, each with a remove button; seen only from a verified session."""
    if user_has_device(request.user) and not request.user.is_verified():
        return redirect(_verify_url(reverse("two_factor_devices")))
    context = {"devices": confirmed_devices(request.user), "required": needs_second_factor(request.user)}
    return render(request, "two_factor/devices.html", context)


@login_required
@require_POST
def remove(request, pk):
    device = get_object_or_404(TOTPDevice, pk=pk, user=request.user, confirmed=True)
    if not request.user.is_verified():
        messages.info(request, "Enter a code from one of your authenticator apps before removing one.")
        return redirect(_verify_url(reverse("two_factor_devices")))
    name = device.name
    remove_device(device)
    if settings.REQUIRE_2FA and needs_second_factor(request.user) and not user_has_device(request.user):
        messages.warning(request, f"“{name}” is removed. Pair a new authenticator app to continue.")
        return redirect("two_factor_setup")
    messages.success(request, f"“{name}” is removed: its codes no longer work for your account.")
    return redirect("two_factor_devices")


class Require2FAMiddleware:
    """Sends doctors and staff to set up or enter a second factor when REQUIRE_2FA is on."""

    ALWAYS_ALLOWED = ("/accounts/2fa/", "/accounts/logout/", "/static/")
    # The one-word probes only: /healthz/details is staff data behind the code.
    ALWAYS_ALLOWED_EXACT = ("/healthz", "/healthz/sla")

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if (
            settings.REQUIRE_2FA
            and needs_second_factor(request.user)
            and not request.user.is_verified()
            and not request.path.startswith(self.ALWAYS_ALLOWED)
            and request.path not in self.ALWAYS_ALLOWED_EXACT
        ):
            target = "two_factor_verify" if user_has_device(request.user) else "two_factor_setup"
            return redirect(with_next(reverse(target), request.get_full_path()))
        return self.get_response(request)
