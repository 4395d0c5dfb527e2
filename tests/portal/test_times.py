"""Every time shown to a person carries its zone, in the hour that repeats in autumn
and around the hour skipped in spring too (portal/times.py and the `zoned` filter)."""

import zoneinfo
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.template import engines
from django.urls import reverse
from django.utils import dateformat, timezone

from consultations import services, sweep
from consultations.models import Notification
from portal.times import format_time
from tests.consultations.sweep_support import breached_by, staff_group
from tests.factories import UserFactory

BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")
# 26 October 2025, Europe/Berlin: 03:00 CEST becomes 02:00 CET, so 02:00-03:00 happens twice.
FIRST_0230 = datetime(2025, 10, 26, 0, 30, tzinfo=UTC)  # 02:30 CEST (UTC+2)
SECOND_0230 = datetime(2025, 10, 26, 1, 30, tzinfo=UTC)  # 02:30 CET (UTC+1), one hour later
WINDOW = timedelta(hours=4)


def render(source: str, **context) -> str:
    return engines["django"].from_string("{% load portal_times tz %}" + source).render(context)


def test_the_repeated_autumn_hour_reads_with_two_different_zone_abbreviations():
    """Issue 13 item 9: two instants in the fall-back hour no longer both read "02:30"."""
    assert format_time(FIRST_0230, "H:i", "Europe/Berlin") == "02:30 CEST"
    assert format_time(SECOND_0230, "H:i", "Europe/Berlin") == "02:30 CET"
    assert format_time(SECOND_0230, "l j F Y, H:i", BERLIN) == "Sunday 26 October 2025, 02:30 CET"


def test_djangos_date_filter_alone_drops_the_zone_in_the_repeated_hour():
    """Issue 13 item 9: why the portal has its own helper. Django's "T" and "O" print
    nothing for an ambiguous wall time, which is how "02:30" lost its zone."""
    local = timezone.localtime(SECOND_0230, BERLIN)
    assert dateformat.format(local, "H:i T").strip() == "02:30"
    assert dateformat.format(local, "O") == ""


def test_times_around_the_skipped_spring_hour_carry_their_zone():
    """Issue 13 item 9: on 30 March 2025 Berlin jumps from 02:00 CET to 03:00 CEST."""
    before = datetime(2025, 3, 30, 0, 59, tzinfo=UTC)
    after = before + timedelta(minutes=1)
    assert format_time(before, "H:i", BERLIN) == "01:59 CET"
    assert format_time(after, "H:i", BERLIN) == "03:00 CEST"


def test_utc_reads_once_and_a_zone_without_an_abbreviation_shows_its_offset():
    """Issue 13 item 9: "04:52 UTC", never "UTC (UTC time)"; zones the database
    names only by offset (São Paulo) show that offset."""
    moment = datetime(2026, 3, 1, 4, 52, tzinfo=UTC)
    assert format_time(moment, "H:i", "UTC") == "04:52 UTC"
    assert format_time(moment, "H:i", "America/Sao_Paulo") == "01:52 -03"


def test_the_template_filter_follows_the_active_zone_and_the_timezone_tag():
    """Issue 13 item 9: pages use the viewer's zone, e-mails the recipient's."""
    with timezone.override(BERLIN):
        assert render('{{ first|zoned:"H:i" }} / {{ second|zoned:"H:i" }}', first=FIRST_0230, second=SECOND_0230) == (
            "02:30 CEST / 02:30 CET"
        )
    tokyo = render('{% timezone "Asia/Tokyo" %}{{ moment|zoned }}{% endtimezone %}', moment=SECOND_0230)
    assert tokyo == "26 Oct 2025, 10:30 JST"
    assert render("{{ nothing|zoned }}", nothing=None) == ""


# --- Pages and e-mails ------------------------------------------------------------------


@pytest.fixture
def berlin_patient(patient):
    patient.time_zone = "Europe/Berlin"
    patient.save()
    return patient


def ask_at(patient, specialty, submitted_at):
    return services.submit_question(
        patient=patient,
        specialty=specialty,
        title="Rash after a new soap",
        description="Itchy red patches on both hands since I changed soap.",
        age=34,
        sex="female",
        now=submitted_at,
    )


@pytest.mark.django_db
def test_due_times_in_the_fall_back_hour_differ_on_the_patients_pages_and_e_mails(client, berlin_patient, specialty):
    """Issue 13 item 9: the success page, the question page and the confirmation
    e-mail show the two due times as "02:30 CEST" and "02:30 CET"."""
    early = ask_at(berlin_patient, specialty, FIRST_0230 - WINDOW)
    late = ask_at(berlin_patient, specialty, SECOND_0230 - WINDOW)
    client.force_login(berlin_patient)

    with time_machine.travel(SECOND_0230 - WINDOW + timedelta(minutes=1)):
        pages = {
            question.pk: client.get(reverse("consultations:question_submitted", args=[question.pk])).content.decode()
            + client.get(reverse("consultations:question_detail", args=[question.pk])).content.decode()
            for question in (early, late)
        }
    assert pages[early.pk].count("Sunday 26 October 2025, 02:30 CEST") == 2
    assert pages[late.pk].count("Sunday 26 October 2025, 02:30 CET") == 2

    emails = dict(Notification.objects.filter(kind="question_received").values_list("question_id", "body"))
    assert "A doctor will answer by Sunday 26 October 2025, 02:30 CEST." in emails[early.pk]
    assert "A doctor will answer by Sunday 26 October 2025, 02:30 CET." in emails[late.pk]
    assert "time)" not in emails[early.pk]


@pytest.mark.django_db
def test_the_doctors_workbench_shows_the_due_time_with_its_zone(client, doctor, berlin_patient, specialty):
    """Issue 13 item 9: the doctor reads "02:30 CET" too, in the doctor's own zone."""
    doctor.user.time_zone = "Europe/Berlin"
    doctor.user.save()
    question = ask_at(berlin_patient, specialty, SECOND_0230 - WINDOW)
    client.force_login(doctor.user)
    with time_machine.travel(SECOND_0230 - WINDOW + timedelta(minutes=1)):
        html = client.get(reverse("doctor_admin:consultations_question_change", args=[question.pk])).content.decode()
    assert "26 Oct 2025, 02:30 CET" in html
    assert "25 Oct 2025, 23:30 CEST" in html  # asked at 21:30 UTC, summer time still


@pytest.mark.django_db
def test_escalation_e_mails_in_the_fall_back_hour_carry_the_zone(specialty, senior_doctor):
    """Issue 13 item 9: breach e-mails to a Berlin reader show which 02:30 passed."""
    senior_doctor.user.time_zone = "Europe/Berlin"
    senior_doctor.user.save()
    staff_group(UserFactory(email="sla.utc@example.com", is_staff=True, time_zone="UTC"))
    now = SECOND_0230 + timedelta(minutes=1)
    question = breached_by(now, specialty)

    sweep.run_sweep(now=now)

    mails = {n.to_email: n for n in Notification.objects.filter(question=question, kind="sla_breached")}
    assert mails["senior@example.com"].subject.endswith("was due 02:30 CET")
    assert "Was due: Sunday 26 October 2025, 02:30 CET" in mails["senior@example.com"].body
    assert mails["sla.utc@example.com"].subject.endswith("was due 01:30 UTC")


def test_a_sweep_writes_its_due_times_in_the_language_active_when_it_started(specialty, senior_doctor, patient):
    """The batch reads the language once (EmailSkeletons.language) for every due time it
    formats: escalations and the patient's apology alike."""
    from django.utils import translation

    now = SECOND_0230 + timedelta(minutes=1)
    question = breached_by(now, specialty, patient=patient)
    with translation.override("de"):
        sweep.run_sweep(now=now)

    bodies = dict(Notification.objects.filter(question=question).values_list("to_email", "body"))
    assert "Sonntag 26 Oktober 2025, 01:30 UTC" in bodies["senior@example.com"]
    assert "Sonntag 26 Oktober 2025" in bodies[patient.email]


@pytest.mark.django_db
def test_the_reassignment_e_mail_gives_the_due_time_with_its_zone(doctor, berlin_patient, specialty):
    """Issue 13 item 9: the doctor a question is handed to reads which 02:30 it is due at."""
    doctor.user.time_zone = "Europe/Berlin"
    doctor.user.save()
    question = ask_at(berlin_patient, specialty, FIRST_0230 - WINDOW)
    services.reassign_question(question.pk, doctor, now=FIRST_0230 - WINDOW + timedelta(minutes=5))
    body = Notification.objects.get(question=question, kind="question_assigned").body
    assert "Guaranteed answer due: Sunday 26 October 2025, 02:30 CEST" in body


@pytest.mark.parametrize(
    "fmt",
    [
        "H:i",
        "j M, H:i",
        "D j M, H:i",
        "l j F Y, H:i",
        "j M Y, H:i",
        r"\T\o\d\a\y \i\s l, \t\h\e jS",
        "aAbcdDeEfFgGhHiIjlLmMnNoOPrsStTUuwWyYzZ",
        r"Y\\m\d",
        "",
    ],
)
@pytest.mark.parametrize("language", ["en", "de", "fr"])
def test_date_format_is_djangos_dateformat_exactly(fmt, language):
    """portal.times.date_format splits each format once (a sweep formats 4,000 times):
    its text must be Django's, in any language, zone and in the repeated autumn hour."""
    from django.utils import translation

    from portal.times import date_format

    moments = [FIRST_0230, SECOND_0230, datetime(2026, 2, 28, 23, 59, 59, 123456, tzinfo=UTC)]
    zones = [BERLIN, zoneinfo.ZoneInfo("America/Sao_Paulo"), UTC]
    with translation.override(language):
        for moment in moments:
            for zone in zones:
                local = timezone.localtime(moment, zone)
                assert date_format(local, fmt) == dateformat.format(local, fmt), (fmt, local)


# Each moment with seconds and microseconds: a format kept per minute must still read
# as Django formats the moment itself. The spring gap, the autumn fold, a zone whose
# offset is not a whole hour, the end of a leap day and of a year.
KOLKATA, SAO_PAULO = zoneinfo.ZoneInfo("Asia/Kolkata"), zoneinfo.ZoneInfo("America/Sao_Paulo")
MOMENTS = [
    FIRST_0230 + timedelta(seconds=17, microseconds=5),
    SECOND_0230 + timedelta(seconds=59, microseconds=999_999),
    datetime(2026, 3, 29, 0, 59, 30, tzinfo=UTC),  # 01:59:30 CET, just before the spring gap
    datetime(2026, 3, 29, 1, 0, 1, tzinfo=UTC),  # 03:00:01 CEST, just after it
    datetime(2028, 2, 29, 23, 59, 59, 1, tzinfo=UTC),
    datetime(2026, 12, 31, 23, 59, 58, tzinfo=UTC),
]


@pytest.mark.parametrize("fmt", ["l j F Y, H:i", "H:i", "j M, H:i", "aAbdDeEfFgGhHiIjlLmMnNoOPStTwWyYzZ", "H:i:s.u U"])
def test_kept_formats_read_as_django_formats_each_moment(fmt):
    """A second call in the same minute comes from the per-minute store; every call
    must give Django's text for its own moment, in every language and zone."""
    from django.utils import translation

    from portal.times import date_format

    for language in ["en", "de", "fr", "en"]:
        with translation.override(language):
            for moment in MOMENTS + [moment + timedelta(seconds=1) for moment in MOMENTS]:
                for zone in [BERLIN, SAO_PAULO, KOLKATA, UTC]:
                    local = timezone.localtime(moment, zone)
                    assert date_format(local, fmt) == dateformat.format(local, fmt), (fmt, language, local)


def test_the_per_minute_store_tells_zones_folds_and_languages_apart():
    """Keys that would compare equal as datetimes (one instant in two zones; the two
    02:30 of the autumn fold in one zone) or differ only in the language stay apart."""
    from django.utils import translation

    from portal.times import date_format

    instant = datetime(2026, 12, 7, 11, 0, tzinfo=UTC)
    assert date_format(timezone.localtime(instant, BERLIN), "H:i e") == "12:00 CET"
    assert date_format(timezone.localtime(instant, UTC), "H:i e") == "11:00 UTC"
    first, second = timezone.localtime(FIRST_0230, BERLIN), timezone.localtime(SECOND_0230, BERLIN)
    assert first == second.replace(fold=0) and (first.fold, second.fold) == (0, 1)
    # Django leaves the zone codes empty in the repeated hour; either 02:30 reads as Django's.
    for local in (first, second, timezone.localtime(FIRST_0230 - timedelta(hours=1), BERLIN)):
        assert date_format(local, "H:i O I Z e") == dateformat.format(local, "H:i O I Z e")
    with translation.override("en"):
        assert date_format(first, "l") == "Sunday"
    with translation.override("de"):
        assert date_format(first, "l") == "Sonntag"


@pytest.mark.parametrize("first", ["de", "en"])
def test_a_language_given_by_the_caller_is_the_one_formatted_in(first):
    """A batch of e-mails reads the language once and passes it (portal.times.format_time's
    `language`): the text is in that language whatever is active, from an empty store
    and in either order, for kept formats and for those with seconds."""
    from django.utils import translation

    from portal import times

    times._minute_text.cache_clear()
    expected = {"de": "Sonntag 26 Oktober 2025, 02:30 CEST", "en": "Sunday 26 October 2025, 02:30 CEST"}
    with translation.override("en" if first == "de" else "de"):
        for language in (first, "en" if first == "de" else "de"):
            assert format_time(FIRST_0230, "l j F Y, H:i", BERLIN, language) == expected[language]
            assert format_time(FIRST_0230, "l, H:i:s", BERLIN, language).startswith(expected[language].split()[0])
        assert format_time(FIRST_0230, "H:i", BERLIN, "de") == "02:30 CEST"
