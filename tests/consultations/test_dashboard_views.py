"""The staff SLA dashboard's pages: who may see them, what they show, CSV, monitoring, reassign, query counts."""

import csv
import io
from datetime import timedelta
from html.parser import HTMLParser

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from consultations import dashboard, staff_views
from consultations.models import Escalation, EscalationLevel, SweepRun
from tests.factories import DoctorFactory, QuestionFactory, UserFactory

pytestmark = pytest.mark.django_db

DASHBOARD = "/staff/sla/"
H = timedelta(hours=1)


@pytest.fixture(autouse=True)
def _sla_settings(settings):
    settings.SLA_ANSWER_HOURS = 4
    settings.SLA_WARN_FRACTION = 0.75
    settings.SLA_SWEEP_SECONDS = 30
    settings.STAFF_METRICS_TOKEN = ""


def staff_member(*codenames, email="ops@example.com"):
    user = UserFactory(email=email, full_name="Olga Operations", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="consultations", codename__in=codenames)
    )
    return user


@pytest.fixture
def sla_staff(db):
    """Staff with exactly the dashboard and reassign permissions (not a superuser)."""
    return staff_member("view_sla_dashboard", "reassign_question")


@pytest.fixture
def staff_client(client, sla_staff):
    client.force_login(sla_staff)
    return client


def open_question(specialty, started_ago, **fields):
    return QuestionFactory(specialty=specialty, submitted_at=timezone.now() - started_ago, **fields)


def answered_question(specialty, doctor, started_ago, after):
    return QuestionFactory(
        specialty=specialty,
        submitted_at=timezone.now() - started_ago,
        answered_after=after,
        answered_by=doctor,
        claimed_by=doctor,
    )


# --- Access -------------------------------------------------------------------------------

PAGES = [DASHBOARD, DASHBOARD + "live/", DASHBOARD + "report.csv", DASHBOARD + "now.json", DASHBOARD + "metrics"]


@pytest.mark.parametrize("url", PAGES)
def test_anonymous_visitor_is_sent_to_the_login_page(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")


@pytest.mark.parametrize("url", PAGES)
@pytest.mark.parametrize("person", ["patient", "doctor"])
def test_patients_and_doctors_are_refused(client, request, url, person):
    person = request.getfixturevalue(person)
    client.force_login(getattr(person, "user", person))
    assert client.get(url).status_code == 403


@pytest.mark.parametrize("url", PAGES)
def test_staff_member_without_the_permission_is_refused(client, url):
    client.force_login(staff_member(email="intern@example.com"))
    assert client.get(url).status_code == 403


def test_permission_without_staff_status_is_refused(client):
    user = UserFactory(email="outsider@example.com")
    user.user_permissions.add(Permission.objects.get(codename="view_sla_dashboard"))
    client.force_login(user)
    assert client.get(DASHBOARD).status_code == 403


@pytest.mark.parametrize("url", PAGES)
def test_staff_with_the_permission_gets_every_page(client, url):
    client.force_login(staff_member("view_sla_dashboard"))
    assert client.get(url).status_code == 200


def test_superuser_staff_gets_the_dashboard(client, staff):
    client.force_login(staff)
    assert client.get(DASHBOARD).status_code == 200


def test_monitoring_endpoints_accept_the_metrics_token(client, settings):
    settings.STAFF_METRICS_TOKEN = "a-long-random-monitoring-token"
    auth = {"HTTP_AUTHORIZATION": "Bearer a-long-random-monitoring-token"}
    assert client.get(DASHBOARD + "now.json", **auth).status_code == 200
    assert client.get(DASHBOARD + "metrics", **auth).status_code == 200
    # The token opens the monitoring figures only, not the dashboard itself.
    assert client.get(DASHBOARD, **auth).status_code == 302


def test_monitoring_endpoints_refuse_a_wrong_token(client, settings):
    settings.STAFF_METRICS_TOKEN = "a-long-random-monitoring-token"
    response = client.get(DASHBOARD + "now.json", HTTP_AUTHORIZATION="Bearer guessed")
    assert response.status_code == 403
    assert response.json() == {"error": "Invalid or missing metrics token."}


def test_a_token_with_unusual_characters_is_refused_not_an_error(client, settings):
    settings.STAFF_METRICS_TOKEN = "a-long-random-monitoring-token"
    response = client.get(DASHBOARD + "metrics", HTTP_AUTHORIZATION="Bearer zażółć")
    assert response.status_code == 403


def test_an_empty_token_setting_never_matches(client):
    assert client.get(DASHBOARD + "now.json", HTTP_AUTHORIZATION="Bearer ").status_code == 403


# --- What the page shows -------------------------------------------------------------------


class Cells(HTMLParser):
    """Reads {row id: {column: text}} from the page's tables and cards (`id` + `data-col`)."""

    def __init__(self):
        super().__init__()
        self.rows, self._row, self._col, self._depth = {}, None, None, 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id", "").startswith(("period-", "now-specialty-")):
            self._row = attrs["id"]
            self.rows[self._row] = {}
        if self._row and "data-col" in attrs:
            self._col, self._depth = attrs["data-col"], 0
            self.rows[self._row][self._col] = ""
        if self._col:
            self._depth += 1
            if tag == "data":
                self.rows[self._row][self._col + ":value"] = attrs["value"]

    def handle_endtag(self, tag):
        if self._col:
            self._depth -= 1
            if self._depth == 0:
                self.rows[self._row][self._col] = self.rows[self._row][self._col].strip()
                self._col = None

    def handle_data(self, data):
        if self._col:
            self.rows[self._row][self._col] += data


def cells(html: str) -> dict:
    parser = Cells()
    parser.feed(html)
    return parser.rows


@pytest.fixture
def clinic(specialty, other_specialty, doctor, other_doctor, patient):
    answered_question(specialty, doctor, 10 * H, 1 * H)
    answered_question(specialty, doctor, 9 * H, 3 * H)
    answered_question(specialty, doctor, 8 * H, 6 * H)  # late
    answered_question(other_specialty, other_doctor, 7 * H, 2 * H)
    late = open_question(specialty, 5 * H, patient=patient)  # due an hour ago
    at_risk = open_question(other_specialty, 3.5 * H)
    Escalation.objects.create(
        question=late,
        level=EscalationLevel.BREACHED,
        clock_due_at=late.clock_due_at,
        recipients=["sla.lead@example.com", "senior@example.com"],
    )
    SweepRun.objects.create(started_at=timezone.now(), finished_at=timezone.now())
    return {"late": late, "at_risk": at_risk}


def test_dashboard_shows_now_period_lists_and_escalations(client, clinic, specialty, patient):
    client.force_login(staff_member("view_sla_dashboard", "view_medical_record", email="lead@example.com"))
    response = client.get(DASHBOARD)
    html = response.content.decode()
    report = response.context["report"]
    assert report.period.key == "24h"
    assert (report.total.answered, report.total.breaches) == (4, 2)
    assert response.context["figures"].breached == 1

    rows = cells(html)
    assert rows[f"now-specialty-{specialty.pk}"]["breached"] == "1"
    assert rows["period-all"]["breaches"] == "2"

    late = clinic["late"]
    assert f'href="/admin/consultations/question/{late.pk}/change/"' in html
    assert patient.patient_label in html
    assert "sla.lead@example.com, senior@example.com" in html
    # Patients appear only by their code: never by name or e-mail.
    assert patient.full_name not in html
    assert patient.email not in html


def test_dashboard_lists_show_no_patient_to_staff_without_the_medical_record_permission(staff_client, clinic, patient):
    """Issue 11 item 2: support staff see counts and question numbers, not who the patients are
    nor links into their records."""
    late = clinic["late"]
    live = staff_client.get(DASHBOARD + "live/").json()["sections"]
    for html in (staff_client.get(DASHBOARD).content.decode(), *live.values()):
        assert patient.patient_label not in html
        assert "/admin/consultations/question/" not in html
        assert late.title not in html
    assert f"Question #{late.pk}" in staff_client.get(DASHBOARD).content.decode()


def test_exports_carry_no_patient_text(staff_client, clinic, patient):
    """Issue 11 item 2: the CSV, now.json and the metrics hold counts, never what a patient wrote or who."""
    late = clinic["late"]
    secrets = (late.title, late.description, patient.patient_code, patient.email, patient.full_name)
    for url in ("report.csv?period=30d", "now.json", "metrics"):
        body = staff_client.get(DASHBOARD + url).content.decode()
        assert body and not [secret for secret in secrets if secret in body], url


def test_period_is_chosen_in_the_url(staff_client, clinic):
    response = staff_client.get(DASHBOARD + "?period=30d")
    assert response.context["report"].period.key == "30d"
    assert 'aria-current="page">Last 30 days' in response.content.decode()
    assert 'href="/staff/sla/report.csv?period=30d"' in response.content.decode()


def test_stale_sweep_is_flagged(staff_client):
    SweepRun.objects.create(
        started_at=timezone.now() - timedelta(minutes=5), finished_at=timezone.now() - timedelta(minutes=5)
    )
    html = staff_client.get(DASHBOARD).content.decode()
    assert 'data-sweep-stale="true"' in html
    assert "stale" in html


def test_page_has_no_inline_script_or_style(staff_client, clinic):
    html = staff_client.get(DASHBOARD).content.decode()
    assert "<script>" not in html and " style=" not in html and " onclick=" not in html
    assert "consultations/dashboard.js" in html and "consultations/dashboard.css" in html


def test_trend_is_an_inline_svg_with_a_table_alternative(staff_client, clinic):
    html = staff_client.get(DASHBOARD).content.decode()
    assert '<svg class="sla-chart"' in html and 'role="img"' in html
    assert html.count('class="sla-chart-bar"') == 30
    assert "The chart&#x27;s figures as a table" in html or "The chart's figures as a table" in html


# --- CSV --------------------------------------------------------------------------------------


def test_csv_parses_and_matches_the_page(staff_client, clinic, specialty, other_specialty, doctor):
    page = cells(staff_client.get(DASHBOARD + "?period=7d").content.decode())
    response = staff_client.get(DASHBOARD + "report.csv?period=7d")
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert 'attachment; filename="sla-report-7d-' in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert list(rows[0]) == dashboard.CSV_COLUMNS
    assert {row["period"] for row in rows} == {"7d"}

    specialties = {row["name"]: row for row in rows if row["scope"] == "specialty"}
    doctors = {row["name"]: row for row in rows if row["scope"] == "doctor"}
    by_key = {
        "period-all": rows[0],
        f"period-specialty-{specialty.pk}": specialties[specialty.name],
        f"period-specialty-{other_specialty.pk}": specialties[other_specialty.name],
        f"period-doctor-{doctor.pk}": doctors[doctor.display_name],
    }

    for key, row in by_key.items():
        shown = page[key]
        assert shown["answered"] == row["answered"]
        assert shown["compliance:value"] == row["compliance_percent"]
        assert shown["median:value"] == row["median_minutes_to_first_answer"]
        assert shown["p90:value"] == row["p90_minutes_to_first_answer"]
        if row["scope"] != "doctor":
            assert shown["received"] == row["received"]
            assert shown["breaches"] == row["breaches"]
            assert shown["escalations"] == row["escalations"]
        else:
            assert shown["open_claims"] == row["open_claims"]

    derm = by_key[f"period-specialty-{specialty.pk}"]
    assert (derm["answered"], derm["answered_late"], derm["open_past_due"], derm["breaches"]) == ("3", "1", "1", "2")
    assert derm["compliance_percent"] == "50.0"
    assert derm["median_minutes_to_first_answer"] == "180.0"
    assert page["period-all"]["compliance"] == "60.0 %"  # 3 of 4 answered on time, 1 unanswered past due


# --- Live refresh and monitoring --------------------------------------------------------------


def test_live_refresh_returns_every_section_for_the_chosen_period(staff_client, clinic):
    response = staff_client.get(DASHBOARD + "live/?period=7d")
    data = response.json()
    assert response["Cache-Control"].startswith("max-age=0")
    assert data["period"] == "7d"
    assert set(data["sections"]) == set(staff_views.LIVE_SECTIONS)
    assert "Last 7 days" in data["sections"]["period"]
    assert f"Question #{clinic['late'].pk}" in data["sections"]["attention"]
    assert 'name="csrfmiddlewaretoken"' in data["sections"]["attention"]


def test_now_json_reports_the_same_figures_as_the_page(staff_client, clinic, specialty):
    data = staff_client.get(DASHBOARD + "now.json").json()
    assert data["open"] == {"total": 2, "on_track": 0, "at_risk": 1, "breached": 1}
    assert data["oldest_waiting"]["question_id"] == clinic["late"].pk
    assert data["sweep"]["stale"] is False
    derm = next(row for row in data["specialties"] if row["slug"] == specialty.slug)
    assert (derm["open"], derm["breached"], derm["verified_doctors"]) == (1, 1, 1)


def test_prometheus_endpoint_speaks_the_text_format(staff_client, clinic):
    response = staff_client.get(DASHBOARD + "metrics")
    assert response["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert 'portal_sla_open_questions{state="breached"} 1' in response.content.decode()


# --- Reassign ---------------------------------------------------------------------------------


def test_staff_reassigns_a_breached_question_to_another_doctor(staff_client, clinic, senior_doctor):
    late = clinic["late"]
    response = staff_client.post(
        DASHBOARD + f"questions/{late.pk}/reassign/", {"doctor": senior_doctor.pk, "period": "7d"}, follow=True
    )
    assert response.redirect_chain == [(DASHBOARD + "?period=7d", 302)]
    late.refresh_from_db()
    assert late.claimed_by == senior_doctor
    assert f"Question #{late.pk} is now assigned to Dr. Sena Senior." in response.content.decode()


@pytest.mark.parametrize("choice", ["other_doctor", "unverified_doctor", "nonsense", "empty"])
def test_reassign_to_a_doctor_outside_the_specialty_is_refused_next_to_the_field(staff_client, clinic, request, choice):
    typed = {"nonsense": "12abc", "empty": ""}
    value = typed[choice] if choice in typed else request.getfixturevalue(choice).pk
    late = clinic["late"]
    response = staff_client.post(DASHBOARD + f"questions/{late.pk}/reassign/", {"doctor": value})
    assert response.status_code == 200
    html = response.content.decode()
    assert f'id="reassign-{late.pk}-error">Choose a verified doctor of this question&#x27;s specialty.' in html
    late.refresh_from_db()
    assert late.claimed_by is None


def test_reassign_of_an_answered_question_changes_nothing(staff_client, specialty, doctor, senior_doctor):
    question = answered_question(specialty, doctor, 3 * H, 1 * H)
    response = staff_client.post(DASHBOARD + f"questions/{question.pk}/reassign/", {"doctor": senior_doctor.pk})
    assert response.status_code == 302
    question.refresh_from_db()
    assert question.claimed_by == doctor


def test_reassign_needs_the_reassign_permission(client, clinic, senior_doctor):
    client.force_login(staff_member("view_sla_dashboard"))
    html = client.get(DASHBOARD).content.decode()
    assert "sla_reassign" not in html and "/reassign/" not in html
    response = client.post(DASHBOARD + f"questions/{clinic['late'].pk}/reassign/", {"doctor": senior_doctor.pk})
    assert response.status_code == 403


def test_reassign_requires_post_and_csrf(sla_staff, clinic, senior_doctor):
    url = DASHBOARD + f"questions/{clinic['late'].pk}/reassign/"
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(sla_staff)
    assert strict.get(url).status_code == 405
    assert strict.post(url, {"doctor": senior_doctor.pk}).status_code == 403
    clinic["late"].refresh_from_db()
    assert clinic["late"].claimed_by is None


# --- Cost -------------------------------------------------------------------------------------


def add_questions(specialties, doctors, count):
    """`count` of each kind per specialty: answered on time, answered late, at risk, breached, escalated."""
    for specialty, doctor in zip(specialties, doctors, strict=True):
        for _ in range(count):
            answered_question(specialty, doctor, 20 * H, 1 * H)
            answered_question(specialty, doctor, 20 * H, 5 * H)
            open_question(specialty, 3.5 * H, claimed_by=doctor)
            late = open_question(specialty, 6 * H)
            Escalation.objects.create(question=late, level=EscalationLevel.BREACHED, clock_due_at=late.clock_due_at)


def page_queries(client, url):
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


@pytest.mark.parametrize("url", [DASHBOARD + "?period=7d", DASHBOARD + "live/", DASHBOARD + "report.csv"])
def test_queries_do_not_grow_with_the_number_of_questions(staff_client, specialty, other_specialty, url):
    doctors = [DoctorFactory(specialties=[specialty]), DoctorFactory(specialties=[other_specialty])]
    add_questions([specialty, other_specialty], doctors, 1)
    # The session's idle end is written at most once a minute: the first request pays for it.
    page_queries(staff_client, url)
    few = page_queries(staff_client, url)
    add_questions([specialty, other_specialty], doctors, 6)
    assert page_queries(staff_client, url) == few


def test_queries_do_not_grow_with_specialties_and_doctors_either(staff_client, specialty, other_specialty):
    from tests.factories import SpecialtyFactory

    doctors = [DoctorFactory(specialties=[specialty]), DoctorFactory(specialties=[other_specialty])]
    add_questions([specialty, other_specialty], doctors, 1)
    # The session's idle end is written at most once a minute: the first request pays for it.
    page_queries(staff_client, DASHBOARD)
    few = page_queries(staff_client, DASHBOARD)
    more = [SpecialtyFactory() for _ in range(4)]
    add_questions(more, [DoctorFactory(specialties=[s]) for s in more], 1)
    assert page_queries(staff_client, DASHBOARD) == few
