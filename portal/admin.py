"""Staff admin for the portal's users (e-mail is the login, no username) and login lockouts."""

from axes.admin import AccessAttemptAdmin
from axes.models import AccessAttempt
from django.contrib import admin, messages
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.utils import timezone
from django.utils.html import format_html_join
from django.utils.translation import ngettext
from django_otp.plugins.otp_totp.admin import TOTPDeviceAdmin
from django_otp.plugins.otp_totp.models import TOTPDevice

from portal import two_factor
from portal.forms import LoginNameLengthMixin
from portal.models import User
from portal.times import format_time


class StaffAdminLoginForm(LoginNameLengthMixin, AdminAuthenticationForm):
    pass


admin.site.login_form = StaffAdminLoginForm


class PortalUserCreationForm(AdminUserCreationForm):
    class Meta:
        model = User
        fields = ("email",)


class PortalUserChangeForm(UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"


def is_privileged(user) -> bool:
    """An account that opens more than a patient's own pages: staff, superuser or doctor."""
    return user.is_staff or user.is_superuser or hasattr(user, "doctor_profile")


# What only a superuser changes on an account: what it may do, and what signs in as it
# (the address is where the password-reset link goes).
SUPERUSER_ONLY_FIELDS = ("email", "is_staff", "is_superuser", "groups", "user_permissions")


@admin.register(User)
class PortalUserAdmin(UserAdmin):
    """Users, for staff with "change user" (support): a patient's profile and whether the
    account is open. Only a superuser grants staff, superuser, groups or permissions,
    changes an address, sets a password, or edits a staff, superuser or doctor account:
    otherwise "change user" would be every permission (tick your own superuser box) and
    anyone's account (set its password, sign in as it). Lifting a second factor is its
    own permission, portal.reset_two_factor."""

    form = PortalUserChangeForm
    add_form = PortalUserCreationForm
    ordering = ("email",)
    list_display = ("email", "full_name", "patient_code", "is_doctor", "is_staff", "is_active", "date_joined")
    list_filter = ("is_staff", "is_superuser", "is_active", "groups")
    search_fields = ("email", "full_name", "patient_code")
    list_select_related = ("doctor_profile",)
    # The sign-up mark is shown, never edited: set by hand it would let anyone with the
    # address finish a "sign-up" on that account (portal.signup.is_pending).
    readonly_fields = ("patient_code", "last_login", "date_joined", "signup_pending_since", "two_factor_apps")
    actions = ["reset_two_factor"]
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Profile", {"fields": ("full_name", "patient_code", ("age", "sex"), "time_zone")}),
        (
            "Permissions",
            {
                "fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions"),
                "description": "Doctors do not need staff status: a verified doctor profile opens /doctor/.",
            },
        ),
        ("Dates", {"fields": ("last_login", "date_joined", "signup_pending_since")}),
        (
            "Two-factor sign-in",
            {
                "fields": ("two_factor_apps",),
                "description": "To reset a lost phone, select the user in the list and run "
                "“Reset two-factor sign-in”: the user pairs a new app at their next sign-in.",
            },
        ),
    )
    add_fieldsets = (
        (
            None,
            {
                "classes": ("wide",),
                "fields": ("email", "full_name", "usable_password", "password1", "password2"),
            },
        ),
    )

    def has_change_permission(self, request, obj=None):
        if not super().has_change_permission(request, obj):
            return False
        return obj is None or request.user.is_superuser or not is_privileged(obj)

    def get_readonly_fields(self, request, obj=None):
        readonly = super().get_readonly_fields(request, obj)
        if obj is None or request.user.is_superuser:  # the add form asks for the address and name only
            return readonly
        return (*readonly, *(name for name in SUPERUSER_ONLY_FIELDS if name not in readonly))

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None or request.user.is_superuser:
            return fieldsets
        # No "Reset password" button that leads to a refusal (user_change_password).
        return [
            (name, {**options, "fields": tuple(field for field in options["fields"] if field != "password")})
            for name, options in fieldsets
        ]

    def user_change_password(self, request, id, form_url=""):
        """Superusers only, for any account: a password staff chose signs them in as that
        person (a doctor, or a patient whose questions support may not read); a user
        who forgot theirs uses the e-mailed reset link."""
        if not request.user.is_superuser:
            raise PermissionDenied
        return super().user_change_password(request, id, form_url)

    def has_reset_two_factor_permission(self, request):
        return request.user.has_perm("portal.reset_two_factor")

    @admin.display(description="paired authenticator apps")
    def two_factor_apps(self, obj):
        devices = two_factor.confirmed_devices(obj) if obj.pk else []
        rows = [(d.name, format_time(d.created_at)) for d in devices]
        return format_html_join(", ", "{} (added {})", rows) or "none"

    @admin.action(description="Reset two-factor sign-in of the selected users", permissions=["reset_two_factor"])
    def reset_two_factor(self, request, queryset):
        """A lost phone: remove every app of the user, logged in the user's history,
        and e-mailed to them. With REQUIRE_2FA they pair a new app at next sign-in.
        A superuser's apps are reset by another superuser only (until they pair a new
        one, their password alone signs in)."""
        if not request.user.is_superuser:
            skipped = queryset.filter(is_superuser=True).count()
            if skipped:
                self.message_user(
                    request,
                    ngettext(
                        "%(count)d superuser left as they were: only a superuser resets a superuser's apps.",
                        "%(count)d superusers left as they were: only a superuser resets a superuser's apps.",
                        skipped,
                    )
                    % {"count": skipped},
                    messages.WARNING,
                )
            queryset = queryset.exclude(is_superuser=True)
        for user in queryset:
            removed = two_factor.reset_devices(user)
            apps = ngettext("%(count)d authenticator app", "%(count)d authenticator apps", removed) % {"count": removed}
            self.log_change(request, user, f"Reset two-factor sign-in: {apps} removed.")
        count = len(queryset)
        self.message_user(
            request,
            ngettext(
                "Two-factor devices reset for %(count)d user.", "Two-factor devices reset for %(count)d users.", count
            )
            % {"count": count},
        )

    @admin.display(description="doctor", boolean=True)
    def is_doctor(self, obj):
        profile = getattr(obj, "doctor_profile", None)
        return profile is not None and profile.may_practise


class PortalAccessAttemptAdmin(AccessAttemptAdmin):
    # Deletes lockout records (evidence of password guessing): the delete permission, not
    # just the view one that django-axes' own action asks for (none).
    @admin.action(description="Clean up expired attempts", permissions=["delete"])
    def cleanup_expired_attempts(self, request, queryset):
        # django-axes 8.3.1 reads an attempt time that only a login request
        # carries, so its own action crashes in the admin (django-axes#1424).
        request.axes_attempt_time = timezone.now()
        return super().cleanup_expired_attempts(request, queryset)


admin.site.unregister(AccessAttempt)
admin.site.register(AccessAttempt, PortalAccessAttemptAdmin)


class PortalTOTPDeviceAdmin(TOTPDeviceAdmin):
    """Staff see and remove authenticator apps but never add or edit one: an app is
    paired by its owner only (portal/two_factor.py). Otherwise staff could add an app
    with a key they chose to someone else's account, or hand their own to it."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def delete_model(self, request, obj):
        two_factor.remove_device(obj)  # the owner is told

    def delete_queryset(self, request, queryset):
        for device in queryset:
            two_factor.remove_device(device)


admin.site.unregister(TOTPDevice)
admin.site.register(TOTPDevice, PortalTOTPDeviceAdmin)


class PortalGroupAdmin(GroupAdmin):
    """Only a superuser changes what a group may do, or its name: a staffer allowed to
    change groups could otherwise give their own group any permission, or rename a
    group into a role the code finds by name (settings.SLA_STAFF_GROUP, "Clinical staff")."""

    def get_readonly_fields(self, request, obj=None):
        readonly = super().get_readonly_fields(request, obj)
        if request.user.is_superuser:
            return readonly
        return (*readonly, "permissions") if obj is None else (*readonly, "name", "permissions")


admin.site.unregister(Group)
admin.site.register(Group, PortalGroupAdmin)
