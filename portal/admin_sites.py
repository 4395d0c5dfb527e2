"""What both admin sites (/admin/ for staff, /doctor/ for doctors) share: lists that
filter by their own filters only (ListedFiltersOnly), and a "view on site" redirect
that says nothing about objects the user may not see.

Django's own redirect (/r/<content type>/<id>/) answers 302 for any object that
exists and 404 otherwise, to anyone the site admits: a doctor could learn which
question ids exist in other specialties. Here it answers only for objects the
site's own ModelAdmin shows this user, and the same 404 for everything else,
missing or forbidden.
"""

from django.contrib.admin import AdminSite, ModelAdmin, widgets
from django.contrib.admin.utils import get_fields_from_path, unquote
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import FieldDoesNotExist
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


# The query-string lookups Django's stock list filters make on the field they filter:
# choices and booleans (__exact), dates (__gte and __lt), empty or not (__isnull, __isempty),
# all values (the bare name); a relation's adds its target's __exact, a date hierarchy its parts.
FILTER_LOOKUPS = ("", "__exact", "__isnull", "__isempty", "__gte", "__lt")
DATE_HIERARCHY_LOOKUPS = ("__year", "__month", "__day")


def listed_lookups(model_admin) -> frozenset[str]:
    """Every query-string lookup the admin's own list filters and date hierarchy make."""
    lookups = set()
    for entry in model_admin.list_filter:
        if isinstance(entry, (list, tuple)):
            entry = entry[0]
        if not isinstance(entry, str):
            lookups.add(getattr(entry, "parameter_name", None))  # a SimpleListFilter
            continue
        lookups.update(entry + suffix for suffix in FILTER_LOOKUPS)
        field = get_fields_from_path(model_admin.model, entry)[-1]
        if field.is_relation and getattr(field, "target_field", None) is not None:
            lookups.add(f"{entry}__{field.target_field.name}__exact")
    if model_admin.date_hierarchy:
        lookups.update(model_admin.date_hierarchy + suffix for suffix in DATE_HIERARCHY_LOOKUPS)
    return frozenset(lookups - {None})


class ListedFiltersOnly:
    """A list filters by what its own filters offer, nothing else (both admin sites give
    every ModelAdmin they register this rule, third parties' included).

    Django's ModelAdmin.lookup_allowed accepts a query-string filter on any of the model's
    own fields, shown or not, so whatever an admin hides could be read back a guess at a
    time: a user's two-factor secret (`?key__startswith=4`), the words of an e-mail that
    quotes a question (`?body__icontains=`) for staff who may not read patients' text.
    Here a lookup is allowed only if the admin's list filters or date hierarchy make it,
    or a raw-id popup's limit_choices_to does (Django's own exception); a name that is not
    one of the model's fields is left to Django, which ignores it or says the filter is
    wrong. The admin's own lookup_allowed (Django's, or a stricter one) must agree too.
    Anything else is answered 400 (Django's DisallowedModelAdminLookup). An admin whose
    list other pages link to with a filter of their own names it in `linked_lookups`."""

    def lookup_allowed(self, lookup, value, request=None):
        # (No class default for linked_lookups here: this class comes first in the MRO.)
        permitted = (
            lookup in listed_lookups(self)
            or lookup in getattr(self, "linked_lookups", ())
            or _limits_a_popup(self.model, lookup, value)
            or not _names_a_field(self.model, lookup)
        )
        return permitted and super().lookup_allowed(lookup, value, request)


def _limits_a_popup(model, lookup, value) -> bool:
    """A lookup that a raw-id popup for one of the model's limited relations passes (as Django)."""
    for limits in model._meta.related_fkey_lookups:
        if callable(limits):
            limits = limits()
        if (lookup, value) in widgets.url_params_from_lookup_dict(limits).items():
            return True
    return False


def _names_a_field(model, lookup) -> bool:
    try:
        model._meta.get_field(lookup.split("__", 1)[0])
    except FieldDoesNotExist:
        return False
    return True


def listed_filters_only(admin_class: type[ModelAdmin]) -> type[ModelAdmin]:
    """`admin_class` with the ListedFiltersOnly rule (itself, if it has it already)."""
    if issubclass(admin_class, ListedFiltersOnly):
        return admin_class
    return type(admin_class.__name__, (ListedFiltersOnly, admin_class), {"__module__": admin_class.__module__})


class PortalAdminSite(AdminSite):
    """What both admin sites share: every ModelAdmin registered, the portal's or a third
    party's (axes, auth, django-otp), gets the ListedFiltersOnly rule."""

    def register(self, model_or_iterable, admin_class=None, **options):
        super().register(model_or_iterable, listed_filters_only(admin_class or ModelAdmin), **options)


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


class StaffAdminSite(ScopedViewOnSiteMixin, PortalAdminSite):
    """The staff admin at /admin/ (django.contrib.admin.site, through PortalAdminConfig)."""

    # The index and the breadcrumbs lead everywhere; the sidebar took a third of a
    # 1280 px screen from the lists beside their filters.
    enable_nav_sidebar = False

    def get_app_list(self, request, app_label=None):
        app_list = super().get_app_list(request, app_label)
        if app_label is not None:  # one app's own page: Django's list, breadcrumbs and all
            return app_list
        return group_app_list(app_list)
