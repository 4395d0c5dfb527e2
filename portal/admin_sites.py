"""What both admin sites (/admin/ for staff, /doctor/ for doctors) share: a "view on
site" redirect that says nothing about objects the user may not see.

Django's own redirect (/r/<content type>/<id>/) answers 302 for any object that
exists and 404 otherwise, to anyone the site admits: a doctor could learn which
question ids exist in other specialties. Here it answers only for objects the
site's own ModelAdmin shows this user, and the same 404 for everything else,
missing or forbidden.
"""

from django.contrib.admin import AdminSite
from django.contrib.admin.utils import unquote
from django.contrib.contenttypes.models import ContentType
from django.http import Http404, HttpResponseRedirect
from django.urls import path


class ReadOnlyMixin:
    """Records and audit trails shown in an admin: viewed, never added, edited or deleted there."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ScopedViewOnSiteMixin:
    def get_urls(self):
        scoped = path(
            "r/<path:content_type_id>/<path:object_id>/",
            self.admin_view(self.view_on_site_redirect),
            name="view_on_site",
        )
        return [scoped if getattr(url, "name", None) == "view_on_site" else url for url in super().get_urls()]

    def view_on_site_redirect(self, request, content_type_id, object_id):
        try:
            model = ContentType.objects.get_for_id(content_type_id).model_class()
        except (ContentType.DoesNotExist, ValueError, TypeError):
            raise Http404 from None
        model_admin = self._registry.get(model)
        if model_admin is None or not model_admin.view_on_site:
            raise Http404
        obj = model_admin.get_object(request, unquote(object_id))
        if obj is None or not model_admin.has_view_or_change_permission(request, obj):
            raise Http404
        if callable(model_admin.view_on_site):
            url = model_admin.view_on_site(obj)
        else:
            url = obj.get_absolute_url() if hasattr(obj, "get_absolute_url") else None
        if not url:
            raise Http404
        return HttpResponseRedirect(url)


# The staff admin's index: what staff work with first, by task rather than by Python
# app, and the technical records last under one plainly named "System" section. A model
# is named by its label; a second value renames it on the index (two models are both
# called "access logs"). A registered model missing here still shows, under System.
STAFF_SECTIONS: tuple[tuple[str, str, tuple[tuple[str, str | None], ...]], ...] = (
    (
        "questions",
        "Questions and the guarantee",
        (
            ("consultations.Question", None),
            ("consultations.Reply", None),
            ("consultations.Attachment", None),
            ("consultations.Escalation", None),
            ("consultations.BreachCredit", None),
            ("consultations.AccessLog", "Record access log (who opened which question)"),
        ),
    ),
    (
        "doctors",
        "Doctors and specialties",
        (("consultations.DoctorProfile", "Doctors"), ("consultations.Specialty", None)),
    ),
    (
        "articles",
        "Articles and newsletter",
        (("articles.Article", None), ("articles.Tag", None), ("articles.Subscriber", "Newsletter subscribers")),
    ),
    ("people", "Users and permissions", (("portal.User", None), ("auth.Group", None))),
    (
        "system",
        "System (technical records)",
        (
            ("consultations.Notification", "E-mail outbox"),
            ("consultations.SweepRun", "SLA sweep runs"),
            ("axes.AccessAttempt", "Login lockouts"),
            ("axes.AccessLog", "Sign-in log"),
            ("axes.AccessFailureLog", "Failed sign-ins"),
            ("otp_totp.TOTPDevice", "Authenticator apps (two-factor)"),
            ("articles.ArticleViewDay", "Article view counters"),
        ),
    ),
)


def group_app_list(app_list: list[dict], sections=STAFF_SECTIONS) -> list[dict]:
    """Django's per-app index (`AdminSite.get_app_list`) regrouped into `sections`, in
    their order and with their names; sections the user has nothing in are left out."""
    by_label = {entry["model"]._meta.label: (app, entry) for app in app_list for entry in app["models"]}
    placed = set()
    grouped = []
    for key, name, members in sections:
        models = []
        for label, display_name in members:
            if label not in by_label:
                continue
            app, entry = by_label[label]
            models.append({**entry, "name": display_name or entry["name"]})
            placed.add(label)
        # No app_url: a section is not one app, so its caption is not a link (admin/app_list.html).
        grouped.append({"name": name, "app_label": f"section-{key}", "app_url": None, "models": models})
    leftovers = [entry for label, (_, entry) in by_label.items() if label not in placed]
    grouped[-1]["models"].extend(sorted(leftovers, key=lambda entry: entry["name"]))
    return [{**section, "has_module_perms": True} for section in grouped if section["models"]]


class StaffAdminSite(ScopedViewOnSiteMixin, AdminSite):
    """The staff admin at /admin/ (django.contrib.admin.site, through PortalAdminConfig)."""

    # The index and the breadcrumbs lead everywhere; the sidebar took a third of a
    # 1280 px screen from the lists beside their filters.
    enable_nav_sidebar = False

    def get_app_list(self, request, app_label=None):
        app_list = super().get_app_list(request, app_label)
        if app_label is not None:  # one app's own page: Django's list, breadcrumbs and all
            return app_list
        return group_app_list(app_list)
