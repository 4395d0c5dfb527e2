"""The staff SLA dashboard at /staff/sla/: pages, live refresh, CSV, monitoring, reassign.

The figures come from the `dashboard` package; these views only check access, pick the
period from the URL and render.
"""

import csv
import hmac
from functools import wraps

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from consultations import dashboard, services
from consultations.access import (
    may_read_medical_records,
    may_reassign,
    may_view_dashboard,
)
from consultations.models import Question

REFRESH_SECONDS = 30

# The parts of the page the 30-second refresh replaces, and their templates.
LIVE_SECTIONS = {
    "now": "consultations/staff/_now.html",
    "period": "consultations/staff/_period.html",
    "trend": "consultations/staff/_trend.html",
    "attention": "consultations/staff/_attention.html",
    "forecast": "consultations/staff/_forecast.html",
    "escalations": "consultations/staff/_escalations.html",
}


def dashboard_access(view):
    """Anonymous: to the login page. Signed in without staff status and the permission: 403."""

    @wraps(view)
    @login_required
    def wrapped(request, *args, **kwargs):
        if not may_view_dashboard(request.user):
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return wrapped


def has_metrics_token(request) -> bool:
    """`Authorization: Bearer <STAFF_METRICS_TOKEN>` lets a monitoring system in without a session."""
    expected = settings.STAFF_METRICS_TOKEN
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return (
        bool(expected) and scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), expected.encode())
    )


def metrics_access(view):
    """The dashboard's access rule, or the monitoring token."""
    protected = dashboard_access(view)

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if has_metrics_token(request):
            return view(request, *args, **kwargs)
        if "Authorization" in request.headers and not request.user.is_authenticated:
            # A machine with a wrong token gets a plain refusal, not a login page.
            return JsonResponse({"error": "Invalid or missing metrics token."}, status=403)
        return protected(request, *args, **kwargs)

    return wrapped


def dashboard_context(request, now, period_key, reassign_error=None) -> dict:
    period = dashboard.period_for(period_key, now)
    figures = dashboard.now_figures(now)
    trend = dashboard.daily_trend(now, timezone.get_current_timezone())
    attention = dashboard.attention_lists(now)
    likely, likely_count = dashboard.likely_to_breach(now)
    if reassign_error:
        dashboard.mark_reassign_error({**attention, "likely": likely}, **reassign_error)
    return {
        "now": now,
        "period": period,
        "periods": [(key, label) for key, (label, _) in dashboard.PERIODS.items()],
        "figures": figures,
        "report": dashboard.period_report(period, [(row.pk, row.name) for row in figures.specialties]),
        "trend": trend,
        "chart": dashboard.trend_chart(trend),
        "attention_lists": [
            ("breached", "Breached: past the due time", attention["breached"], figures.breached),
            ("at_risk", "At risk: past the warning time", attention["at_risk"], figures.at_risk),
        ],
        "likely": likely,
        "likely_count": likely_count,
        "escalations": dashboard.latest_escalations(),
        "can_reassign": may_reassign(request.user),
        # Counts and question numbers for every dashboard user; patients' codes and the
        # links to their records only with the medical-record permission.
        "show_patients": may_read_medical_records(request.user),
        "live_sections": LIVE_SECTIONS,
        "refresh_seconds": REFRESH_SECONDS,
        # The refresh pauses once the user has been idle this long, so polling
        # cannot keep an unattended staff session alive for ever.
        "idle_seconds": settings.STAFF_SESSION_IDLE_SECONDS,
    }


@never_cache
@require_GET
@dashboard_access
def sla_dashboard(request):
    context = dashboard_context(request, timezone.now(), request.GET.get("period"))
    return render(request, "consultations/staff/sla_dashboard.html", context)


@never_cache
@require_GET
@dashboard_access
def sla_live(request):
    """The refreshable sections of the page as HTML fragments, for dashboard.js."""
    now = timezone.now()
    context = dashboard_context(request, now, request.GET.get("period"))
    sections = {name: render_to_string(template, context, request=request) for name, template in LIVE_SECTIONS.items()}
    return JsonResponse({"generated_at": now.isoformat(), "period": context["period"].key, "sections": sections})


@never_cache
@require_GET
@dashboard_access
def sla_export_csv(request):
    now = timezone.now()
    report = dashboard.period_report(dashboard.period_for(request.GET.get("period"), now))
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    filename = f"sla-report-{report.period.key}-{now:%Y%m%dT%H%MZ}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    writer = csv.DictWriter(response, fieldnames=dashboard.CSV_COLUMNS)
    writer.writeheader()
    writer.writerows(dashboard.period_report_rows(report))
    return response


@never_cache
@require_GET
@metrics_access
def sla_now_json(request):
    return JsonResponse(dashboard.now_as_dict(dashboard.now_figures(timezone.now())))


@never_cache
@require_GET
@metrics_access
def sla_now_prometheus(request):
    body = dashboard.now_as_prometheus(dashboard.now_figures(timezone.now()))
    return HttpResponse(body, content_type="text/plain; version=0.0.4; charset=utf-8")


@require_POST
@dashboard_access
def reassign(request, pk):
    """One-click reassign from the at-risk, breached and likely-to-breach lists."""
    if not may_reassign(request.user):
        raise PermissionDenied
    question = get_object_or_404(Question.objects.only("pk", "specialty_id", "status"), pk=pk)
    period_key = request.POST.get("period")
    back = reverse("staff:sla_dashboard") + f"?period={dashboard.period_for(period_key, timezone.now()).key}"
    doctor_id = request.POST.get("doctor", "")
    doctor = None
    if doctor_id.isdigit():
        doctor = services.eligible_doctors([question.specialty_id]).filter(pk=doctor_id).first()
    refusal = "" if doctor is not None else "Choose a verified doctor of this question's specialty."
    if not refusal:
        try:
            moved = services.reassign_question(question.pk, doctor)
        except services.AssignmentRefused as refused:  # the doctor changed since the lookup
            refusal = str(refused)
    if refusal:
        error = {"question_id": question.pk, "selected": doctor_id, "message": refusal}
        context = dashboard_context(request, timezone.now(), period_key, reassign_error=error)
        return render(request, "consultations/staff/sla_dashboard.html", context)
    if moved:
        messages.success(request, f"Question #{question.pk} is now assigned to {doctor.display_name}.")
    else:
        messages.warning(request, f"Question #{question.pk} is no longer waiting for a doctor; nothing was changed.")
    return redirect(back)
