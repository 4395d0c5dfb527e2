from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from django.views.generic import TemplateView

from articles import views as article_views
from consultations.doctor_admin import doctor_admin_site
from portal import two_factor
from portal import views as portal_views

admin.site.site_header = "Ask a Doctor: staff admin"
admin.site.site_title = "Ask a Doctor staff"

# A branded page that says nothing was lost (503 when the database is unreachable).
handler500 = "portal.views.server_error"

urlpatterns = [
    path("", article_views.home, name="home"),
    path("doctors/<slug:slug>/", article_views.doctor_profile, name="doctor_profile"),
    path("articles/", include("articles.urls")),
    path("accounts/2fa/setup/", two_factor.setup, name="two_factor_setup"),
    path("accounts/2fa/verify/", two_factor.verify, name="two_factor_verify"),
    path("accounts/2fa/devices/", two_factor.devices, name="two_factor_devices"),
    path("accounts/2fa/devices/<int:pk>/remove/", two_factor.remove, name="two_factor_remove"),
    path("accounts/", include("portal.account_urls")),
    path("questions/", include("consultations.urls")),
    path("doctor/", doctor_admin_site.urls),
    path("admin/", admin.site.urls),
    path("staff/", include("consultations.staff_urls")),
    path("", include("articles.seo_urls")),
    path("healthz", portal_views.healthz, name="healthz"),
    path("healthz/sla", portal_views.healthz_sla, name="healthz_sla"),
    path("healthz/details", portal_views.healthz_details, name="healthz_details"),
    path("terms/", TemplateView.as_view(template_name="pages/terms.html"), name="terms"),
    path("privacy/", TemplateView.as_view(template_name="pages/privacy.html"), name="privacy"),
    path("disclaimer/", TemplateView.as_view(template_name="pages/disclaimer.html"), name="disclaimer"),
]

if settings.DEBUG:
    from django.conf.urls.static import static

    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
