"""Account pages of our own: sign up and finishing it, log in, the patient's profile,
password change, signing out other devices,
and the login-protection hooks django-axes calls (the rest are Django's views)."""

from axes.helpers import get_cool_off
from axes.utils import reset as reset_login_failures
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login, update_session_auth_hash
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render, resolve_url
from django.utils.decorators import method_decorator
from django.utils.http import urlsafe_base64_decode
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST
from django_otp import user_has_device

from consultations import drafts
from consultations.access import home_url_name
from portal import session_policy
from portal import signup as signup_service
from portal.forms import (
    ConfirmPasswordForm,
    CountedPasswordChangeForm,
    EmailAuthenticationForm,
    FinishSignUpForm,
    ProfileForm,
    SignUpForm,
)
from portal.models import User
from portal.ratelimit import rate_limited
from portal.redirects import safe_next
from portal.two_factor import needs_second_factor

# Where to go after finishing the sign-up in the same browser (the ask page by default).
SIGNUP_NEXT_SESSION_KEY = "signup_next"


@sensitive_post_parameters("password1", "password2")
@rate_limited("signup")
def signup(request):
    """The same reply whether or not the address has an account (portal/signup.py)."""
    if request.user.is_authenticated:
        return redirect(safe_next(request) or resolve_url("consultations:ask"))
    if request.method == "POST":
        form = SignUpForm(request.POST)
        if form.is_valid():
            user = signup_service.register(form)
            # A question typed first goes with this sign-up, wherever its link is opened.
            drafts.link_to_signup(request, user)
            request.session[SIGNUP_NEXT_SESSION_KEY] = safe_next(request)
            return redirect("signup_sent")
    else:
        form = SignUpForm()
    return render(
        request,
        "registration/signup.html",
        {"form": form, "next": safe_next(request), "question_waiting": question_waiting(request)},
    )


def question_waiting(request) -> bool:
    """The visitor came from the ask page with a question kept for them (issue 15)."""
    return drafts.in_session(request) is not None


def signup_sent(request):
    context = {"question_waiting": question_waiting(request), "draft_hours": settings.QUESTION_DRAFT_HOURS}
    return render(request, "registration/signup_sent.html", context)


@sensitive_post_parameters("password")
@rate_limited("password_confirm")
def signup_confirm(request, uidb64, token):
    """The e-mailed link: with the password chosen at sign-up, the account opens and signs in."""
    user = _pending_user(uidb64, token)
    if user is None:
        return render(request, "registration/signup_confirm.html", {"form": None})
    form = FinishSignUpForm(user, request.POST or None)
    if request.method == "POST" and form.is_valid():
        signup_service.activate(user)
        drafts.claim_signup(user)
        login(request, user, backend="portal.auth_backends.PortalModelBackend")
        messages.success(request, "Welcome! Your account is ready.")
        return redirect(request.session.pop(SIGNUP_NEXT_SESSION_KEY, "") or resolve_url("consultations:ask"))
    return render(request, "registration/signup_confirm.html", {"form": form, "email": user.email})


def _pending_user(uidb64, token):
    try:
        pk = urlsafe_base64_decode(uidb64).decode()
        user = User.objects.get(pk=pk)
    except (TypeError, ValueError, OverflowError, User.DoesNotExist):
        return None
    if signup_service.is_pending(user) and signup_service.activation_token.check_token(user, token):
        return user
    return None


def _render_profile(request, form=None, sign_out_form=None, status=200):
    context = {
        "form": form or ProfileForm(instance=request.user),
        "sign_out_form": sign_out_form or ConfirmPasswordForm(request.user),
        "default_time_zone": settings.TIME_ZONE,
        "offers_two_factor": needs_second_factor(request.user) or user_has_device(request.user),
    }
    return render(request, "registration/profile.html", context, status=status)


@login_required
def profile(request):
    if request.method == "POST":
        form = ProfileForm(request.POST, instance=request.user)
        if form.is_valid():
            form.save()
            messages.success(request, "Your profile is saved.")
            return redirect("profile")
        return _render_profile(request, form=form)
    return _render_profile(request)


@login_required
@require_POST
@sensitive_post_parameters("password")
@rate_limited("password_confirm")
def sign_out_other_devices(request):
    """End every other session of this account (a lost phone, a shared computer).

    Re-hashing the password with a fresh salt changes the hash that each session
    carries, so Django rejects all of them; this session is then updated to the
    new hash and stays signed in. It works whatever the session store is.
    """
    form = ConfirmPasswordForm(request.user, request.POST)
    if not form.is_valid():
        return _render_profile(request, sign_out_form=form)
    request.user.set_password(form.cleaned_data["password"])
    request.user.save(update_fields=["password"])
    update_session_auth_hash(request, request.user)
    messages.success(request, "You are now signed out on every other device. This one stays signed in.")
    return redirect("profile")


class LoginView(auth_views.LoginView):
    """The site's login, with "keep me signed in" for patients (portal/session_policy.py)."""

    authentication_form = EmailAuthenticationForm
    redirect_authenticated_user = True

    def get_default_redirect_url(self):
        """Without a `next`: each role's home (the doctor's queue, the staff dashboard or
        admin), a patient's questions (consultations.access.home_url_name)."""
        return resolve_url(home_url_name(self.request.user))

    def form_valid(self, form):
        response = super().form_valid(form)
        if form.cleaned_data.get("remember_me") and session_policy.may_stay_signed_in(form.get_user()):
            session_policy.keep_signed_in(self.request)
        return response

    def get_context_data(self, **kwargs):
        return {
            **super().get_context_data(**kwargs),
            "remember_days": settings.PATIENT_REMEMBER_DAYS,
            "idle_minutes": settings.PATIENT_SESSION_IDLE_SECONDS // 60,
            "question_waiting": question_waiting(self.request),
        }


@method_decorator(rate_limited("password_confirm"), name="dispatch")
class PasswordChangeView(auth_views.PasswordChangeView):
    """Typing the current password is a password guess: a stolen session gets the same
    few tries an hour as the other confirmations (one shared budget), each failure logged."""

    form_class = CountedPasswordChangeForm


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    """Choosing a new password through the e-mailed link also lifts a login lockout:
    the person proved they own the address."""

    def get_default_redirect_url(self):
        """Without a `next`: each role's home (the doctor's queue, the staff dashboard or
        admin), a patient's questions (consultations.access.home_url_name)."""
        return resolve_url(home_url_name(self.request.user))

    def form_valid(self, form):
        response = super().form_valid(form)
        reset_login_failures(username=form.user.get_username().lower())
        return response


# --- Hooks for django-axes (see AXES_* in settings) ------------------------------------


def login_attempt_username(request, credentials=None) -> str:
    """The e-mail tried, normalised so "Ann@X.org " and "ann@x.org" share one count."""
    raw = (credentials or {}).get("username") or request.POST.get("username") or ""
    # The login forms refuse longer names; this guards django-axes' 255-character column anyway.
    return raw.strip().lower()[:255]


def locked_out(request, original_response=None, credentials=None):
    """A friendly page instead of django-axes' one-line 429: what happened and what to do."""
    cool_off = get_cool_off(request)
    minutes = max(1, int(cool_off.total_seconds() // 60)) if cool_off else None
    context = {
        "minutes": minutes,
        "failure_limit": settings.AXES_FAILURE_LIMIT,
        # Set by portal.login_protection when a spraying ceiling, not the pair, paused it.
        "ceiling": getattr(request, "login_ceiling", None),
    }
    return render(request, "registration/locked_out.html", context, status=429)
