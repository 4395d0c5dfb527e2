"""Two-factor authentication (TOTP) for doctors and staff.

When REQUIRE_2FA is on (the default with PRODUCTION=true), a doctor or staff
member whose session is not verified with a one-time code is sent to set up an
authenticator app (first time) or to enter a code, before any other page.
"""

from base64 import b32encode

import segno
from django import forms
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django_otp import login as otp_login
from django_otp import match_token, user_has_device
from django_otp.plugins.otp_totp.models import TOTPDevice

DEVICE_NAME = "Authenticator app"


def needs_second_factor(user) -> bool:
    """Doctors and staff handle patients' data: they must use a second factor."""
    if not user.is_authenticated:
        return False
    return user.is_staff or hasattr(user, "doctor_profile")


def _safe_next(request, default="/"):
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return default


class TokenForm(forms.Form):
    token = forms.RegexField(
        regex=r"^\s*\d{6}\s*$",
        label="Six-digit code from your authenticator app",
        error_messages={"invalid": "Enter the six digits shown in your authenticator app."},
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}),
    )

    def clean_token(self):
        return self.cleaned_data["token"].strip()


@login_required
def setup(request):
    """Pair an authenticator app: show the QR code, confirm with a first code."""
    device = TOTPDevice.objects.filter(user=request.user, confirmed=False).first()
    if device is None:
        device = TOTPDevice.objects.create(user=request.user, name=DEVICE_NAME, confirmed=False)
    form = TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        allowed, _ = device.verify_is_allowed()
        if not allowed:
            # django-otp slows down guessing: each failure doubles the wait.
            form.add_error("token", "Too many wrong codes. Wait a few seconds and try the newest code.")
        elif device.verify_token(form.cleaned_data["token"]):
            device.confirmed = True
            device.save(update_fields=["confirmed"])
            otp_login(request, device)
            return redirect(_safe_next(request))
        else:
            form.add_error("token", "That code did not match. Check the time on your phone and try the newest code.")
    qr = segno.make(device.config_url, error="m").svg_data_uri(scale=5, border=2)
    context = {
        "form": form,
        "qr_data_uri": qr,
        "secret": b32encode(device.bin_key).decode(),
        "next": _safe_next(request, ""),
    }
    return render(request, "two_factor/setup.html", context)


@login_required
def verify(request):
    """Ask for a code from an already paired device."""
    if not user_has_device(request.user):
        return redirect(f"{reverse('two_factor_setup')}?next={_safe_next(request)}")
    form = TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        device = match_token(request.user, form.cleaned_data["token"])
        if device is not None:
            otp_login(request, device)
            return redirect(_safe_next(request))
        form.add_error("token", "That code is not valid or was already used. Try the newest code.")
    return render(request, "two_factor/verify.html", {"form": form, "next": _safe_next(request, "")})


class Require2FAMiddleware:
    """Sends doctors and staff to set up or enter a second factor when REQUIRE_2FA is on."""

    ALWAYS_ALLOWED = ("/accounts/2fa/", "/accounts/logout/", "/static/", "/healthz")

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if (
            settings.REQUIRE_2FA
            and needs_second_factor(request.user)
            and not request.user.is_verified()
            and not request.path.startswith(self.ALWAYS_ALLOWED)
        ):
            target = "two_factor_verify" if user_has_device(request.user) else "two_factor_setup"
            return redirect(f"{reverse(target)}?next={request.get_full_path()}")
        return self.get_response(request)
