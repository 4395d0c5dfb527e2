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


class StaffAdminSite(ScopedViewOnSiteMixin, AdminSite):
    """The staff admin at /admin/ (django.contrib.admin.site, through PortalAdminConfig)."""
