"""Staff pages under /staff/: the SLA dashboard (issue 6)."""

from django.urls import path

from consultations import staff_views

app_name = "staff"

urlpatterns = [
    path("sla/", staff_views.sla_dashboard, name="sla_dashboard"),
    path("sla/live/", staff_views.sla_live, name="sla_live"),
    path("sla/report.csv", staff_views.sla_export_csv, name="sla_export"),
    path("sla/now.json", staff_views.sla_now_json, name="sla_now"),
    path("sla/metrics", staff_views.sla_now_prometheus, name="sla_metrics"),
    path("sla/questions/<int:pk>/reassign/", staff_views.reassign, name="sla_reassign"),
]
