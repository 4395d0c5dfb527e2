"""Staff admin for the portal's users (e-mail is the login, no username) and login lockouts."""

from axes.admin import AccessAttemptAdmin
from axes.models import AccessAttempt
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.utils import timezone

from portal.models import User


class PortalUserCreationForm(AdminUserCreationForm):
    class Meta:
        model = User
        fields = ("email",)


class PortalUserChangeForm(UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"


@admin.register(User)
class PortalUserAdmin(UserAdmin):
    form = PortalUserChangeForm
    add_form = PortalUserCreationForm
    ordering = ("email",)
    list_display = ("email", "full_name", "patient_code", "is_doctor", "is_staff", "is_active", "date_joined")
    list_filter = ("is_staff", "is_superuser", "is_active", "groups")
    search_fields = ("email", "full_name", "patient_code")
    list_select_related = ("doctor_profile",)
    readonly_fields = ("patient_code", "last_login", "date_joined")
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
        ("Dates", {"fields": ("last_login", "date_joined")}),
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

    @admin.display(description="doctor", boolean=True)
    def is_doctor(self, obj):
        profile = getattr(obj, "doctor_profile", None)
        return profile is not None and profile.is_verified


class PortalAccessAttemptAdmin(AccessAttemptAdmin):
    @admin.action(description="Clean up expired attempts")
    def cleanup_expired_attempts(self, request, queryset):
        # django-axes 8.3.1 reads an attempt time that only a login request
        # carries, so its own action crashes in the admin (django-axes#1424).
        request.axes_attempt_time = timezone.now()
        return super().cleanup_expired_attempts(request, queryset)


admin.site.unregister(AccessAttempt)
admin.site.register(AccessAttempt, PortalAccessAttemptAdmin)
