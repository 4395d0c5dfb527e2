"""django.contrib.admin's app config with the portal's staff site (portal.admin_sites) as `admin.site`.

Its own module: an app config is imported before the models are ready.
"""

from django.contrib.admin.apps import AdminConfig


class PortalAdminConfig(AdminConfig):
    default_site = "portal.admin_sites.StaffAdminSite"
