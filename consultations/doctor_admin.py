"""The doctors' admin site at /doctor/ (issue 3 builds the queue here)."""

from django.contrib.admin import AdminSite

from consultations.access import verified_doctor


class DoctorAdminSite(AdminSite):
    site_header = "Ask a Doctor: doctors' workbench"
    site_title = "Doctors' workbench"
    index_title = "Your queue"

    def has_permission(self, request):
        return verified_doctor(request.user) is not None


doctor_admin_site = DoctorAdminSite(name="doctor_admin")
