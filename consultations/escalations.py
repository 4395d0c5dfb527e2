"""What an escalation says and to whom: the audiences of the levels and their e-mails.

The sweep (consultations.sweep) decides which questions escalate; this module
turns one question's escalation into e-mails: `Audience` names who hears each
level (`Level.audience` is one of its methods), `messages` renders them.
"""

import logging
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth import get_user_model

from consultations import links
from consultations.levels import Level
from consultations.models import DoctorProfile, Question
from consultations.notifications import OutgoingEmail, render_email
from portal import times

logger = logging.getLogger(__name__)


class EscalationEmails:
    """Renders each escalation e-mail once per question and recipients' time zone.

    Recipients of the same question differ only in their time zone (the due
    time is shown in it) and in which site their link opens (the doctors'
    workbench or the staff admin). Rendering is most of an escalation's cost,
    so the e-mail is rendered once per time zone with a marker for the link,
    and each recipient's link is put in its place. Should a template ever
    transform the link (a filter on it), the marker would not come out whole,
    and that e-mail is rendered for each recipient instead.

    What it saves (one 500-question breach batch, 3,000 e-mails, two time zones,
    staff and senior doctors; loaded 2-core machine, medians of 6): the sweep
    took 1.79 s; rendering once per time zone *and site* instead (no marker)
    took 2.53 s, 41 % more. An outage backlog of 10^5 breaches would escalate
    about two and a half minutes later per worker without it.
    """

    URL_MARKER = "\x00escalation-link\x00"

    def __init__(self):
        self._rendered: dict[tuple, tuple[str, str]] = {}
        self._links: dict[str, Callable[[int], str]] = {}

    def render(self, kind: str, question: Question, user, *, never_warned: bool) -> tuple[str, str]:
        time_zone = user.time_zone or settings.TIME_ZONE
        url = self.link(question, _site_for(user))
        key = (kind, question.pk, time_zone, never_warned)
        if key not in self._rendered:
            self._rendered[key] = self._render(kind, question, time_zone, never_warned, self.URL_MARKER)
        subject, body = self._rendered[key]
        leftover = (subject + body).replace(self.URL_MARKER, "")
        if "\x00" in leftover or "escalation-link" in leftover:
            return self._render(kind, question, time_zone, never_warned, url)
        return subject.replace(self.URL_MARKER, url), body.replace(self.URL_MARKER, url)

    def link(self, question: Question, site: str) -> str:
        """Where the recipient works on the question (reversed once per site: consultations.links)."""
        if site not in self._links:
            self._links[site] = links.question_admin_urls(site)
        return settings.SITE_URL + self._links[site](question.pk)

    @staticmethod
    def _render(kind, question, time_zone, never_warned, url) -> tuple[str, str]:
        # Formatted here rather than with {% timezone %} and a filter in the template:
        # the same text, for less than half the rendering time.
        zone = times.as_zone(time_zone)
        # Doctors and staff get the patient's label, never their name or e-mail,
        # and no health details: those stay behind the login.
        return render_email(
            kind,
            {
                "question": question,
                "patient_label": question.patient_label,
                "specialty": question.specialty.name,
                "clock_due_at": question.clock_due_at,
                "due": times.format_time(question.clock_due_at, times.LONG_DATE_TIME, zone),
                "due_time": times.format_time(question.clock_due_at, "H:i", zone),
                "is_follow_up": question.is_follow_up,
                "is_urgent": question.is_urgent,
                "never_warned": never_warned,
                "time_zone": time_zone,
                "url": url,
            },
        )


def messages(level: Level, question: Question, recipients: list, *, never_warned: bool, emails: EscalationEmails):
    """The e-mails of one question's escalation, one per recipient."""
    kind = level.kind
    due = question.clock_due_at.isoformat()
    rows = []
    for user in recipients:
        subject, body = emails.render(kind, question, user, never_warned=never_warned)
        rows.append(
            OutgoingEmail(
                to_email=user.email,
                kind=kind,
                subject=subject,
                body=body,
                dedupe_key=f"{kind}:{question.pk}:{due}:{user.pk}",
                recipient_id=user.pk,
                question_id=question.pk,
            )
        )
    return rows


def _site_for(user) -> str:
    profile = getattr(user, "doctor_profile", None)
    return "doctor_admin" if profile is not None and profile.may_practise else "admin"


class Audience:
    """Who hears about each level. Looked up once per sweep: the staff group once, the
    doctors of the specialties a batch touches in one query, so a sweep's queries
    grow with its batches, not with the questions due or the people notified."""

    def __init__(self):
        self._staff = None
        self._seniors: dict[int, list] = {}
        self._doctors: dict[int, list] = {}

    def staff(self) -> list:
        if self._staff is None:
            self._staff = list(
                get_user_model()
                .objects.filter(groups__name=settings.SLA_STAFF_GROUP, is_active=True)
                # Which link each one gets depends on whether they are also a doctor.
                .select_related("doctor_profile")
                .distinct()
                .order_by("pk")
            )
        return self._staff

    def load(self, specialty_ids) -> None:
        """Fetch the verified doctors (seniors among them) of every specialty not looked up yet."""
        missing = sorted(set(specialty_ids) - self._doctors.keys())
        if not missing:
            return
        for specialty_id in missing:
            self._doctors[specialty_id], self._seniors[specialty_id] = [], []
        links = (
            DoctorProfile.specialties.through.objects.filter(
                specialty_id__in=missing,
                doctorprofile__in=DoctorProfile.objects.verified(),
            )
            .select_related("doctorprofile__user")
            .order_by("doctorprofile_id")
        )
        for link in links:
            user = link.doctorprofile.user
            self._doctors[link.specialty_id].append(user)
            if link.doctorprofile.is_senior:
                self._seniors[link.specialty_id].append(user)

    def seniors(self, specialty_id: int) -> list:
        self.load([specialty_id])
        return self._seniors[specialty_id]

    def doctors(self, specialty_id: int) -> list:
        self.load([specialty_id])
        return self._doctors[specialty_id]

    def at_risk(self, question: Question) -> list:
        """The claiming doctor; else the specialty's verified doctors; else staff, so someone knows."""
        claimant = question.claimed_by
        if claimant is not None and claimant.may_practise:
            return [claimant.user]
        return self.doctors(question.specialty_id) or self.staff()

    def staff_and_seniors(self, question: Question) -> list:
        """The SLA staff group and the specialty's senior doctors."""
        return self.staff() + self.seniors(question.specialty_id)

    def for_level(self, level: Level, question: Question, settled: tuple[Level, ...] = ()) -> list:
        """Who hears `level` about `question`; with the audiences of the levels it
        `settled` (owed but never sent: nobody who should have heard is left out)."""
        users = []
        for each in (level, *settled):
            users += getattr(self, each.audience)(question)
        unique = {}
        for user in users:
            unique.setdefault(user.pk, user)
        return list(unique.values())
