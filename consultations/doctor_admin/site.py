"""The workbench's admin site and its sign-in form: who may enter /doctor/."""

from django.contrib import messages
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import redirect
from django.urls import path, reverse
from django.utils import timezone

from consultations import duty
from consultations.access import (
    may_use_workbench,
    verified_doctor,
)
from portal.admin_sites import PortalAdminSite, ScopedViewOnSiteMixin
from portal.forms import LoginNameLengthMixin
from portal.redirects import safe_next

# --- Login ------------------------------------------------------------------------


class WorkbenchLoginForm(LoginNameLengthMixin, AuthenticationForm):
    """Admin login without the admin's is_staff rule: verified doctors get in, patients do not."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "not_verified": (
            "Your doctor account has not been verified by the clinic team yet, so the queue is not open to you. "
            "Please contact the clinic team."
        ),
        "not_doctor": (
            "This sign-in is for the clinic's doctors. To see your own questions, sign in on the patient pages."
        ),
        "not_clinical": (
            "Your staff account may not read patients' questions. "
            "Ask the clinic's administrator for clinical access if your work needs it."
        ),
    }

    def confirm_login_allowed(self, user):
        super().confirm_login_allowed(user)
        if may_use_workbench(user):
            return
        if hasattr(user, "doctor_profile"):
            code = "not_verified"
        else:
            code = "not_clinical" if user.is_staff else "not_doctor"
        raise ValidationError(self.error_messages[code], code=code)


class DoctorAdminSite(ScopedViewOnSiteMixin, PortalAdminSite):
    site_header = "Ask a Doctor: doctors' workbench"
    site_title = "Doctors' workbench"
    index_title = "Your queue"
    site_url = "/"
    enable_nav_sidebar = False
    login_form = WorkbenchLoginForm
    login_template = "doctor_admin/login.html"

    def has_permission(self, request):
        return may_use_workbench(request.user)

    def index(self, request, extra_context=None):
        # The queue is the home page: there is nothing else a doctor comes for.
        return redirect("doctor_admin:consultations_question_changelist")

    def app_index(self, request, app_label, extra_context=None):
        if app_label == "consultations":
            return redirect("doctor_admin:consultations_question_changelist")
        return super().app_index(request, app_label, extra_context)

    def get_urls(self):
        return [path("duty/", self.admin_view(self.duty_switch_view), name="duty_switch"), *super().get_urls()]

    def duty_switch_view(self, request):
        """The doctor's own on/off duty switch (one POST from the queue)."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        doctor = verified_doctor(request.user)
        if doctor is None:
            raise PermissionDenied("Only verified doctors go on or off duty.")
        if request.POST.get("on") == "1":
            duty.switch_on_duty(doctor)
            messages.success(request, duty.describe_duty(doctor, timezone.now()))
        else:
            duty.switch_off_duty(doctor)
            messages.success(request, "You are off duty: you get no e-mails about new work until you go on duty again.")
        return HttpResponseRedirect(
            safe_next(
                request, request.POST.get("next", ""), default=reverse("doctor_admin:consultations_question_changelist")
            )
        )


doctor_admin_site = DoctorAdminSite(name="doctor_admin")
doctor_admin_site.disable_action("delete_selected")
