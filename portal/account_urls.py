"""Accounts: sign up, log in by e-mail, log out, password reset and change, profile,
signing out other devices."""

from django.contrib.auth import views as auth_views
from django.urls import path

from portal import account_views
from portal.forms import QueuedPasswordResetForm
from portal.ratelimit import rate_limited

urlpatterns = [
    path("signup/", account_views.signup, name="signup"),
    path("signup/sent/", account_views.signup_sent, name="signup_sent"),
    path("signup/finish/<uidb64>/<token>/", account_views.signup_confirm, name="signup_confirm"),
    path("login/", account_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("profile/", account_views.profile, name="profile"),
    path("profile/sign-out-other-devices/", account_views.sign_out_other_devices, name="sign_out_other_devices"),
    path("password/change/", account_views.PasswordChangeView.as_view(), name="password_change"),
    path("password/change/done/", auth_views.PasswordChangeDoneView.as_view(), name="password_change_done"),
    path(
        "password/reset/",
        # Each post may send an e-mail: limited per client.
        rate_limited("password_reset")(auth_views.PasswordResetView.as_view(form_class=QueuedPasswordResetForm)),
        name="password_reset",
    ),
    path("password/reset/sent/", auth_views.PasswordResetDoneView.as_view(), name="password_reset_done"),
    path(
        "password/reset/<uidb64>/<token>/",
        account_views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path("password/reset/done/", auth_views.PasswordResetCompleteView.as_view(), name="password_reset_complete"),
]
