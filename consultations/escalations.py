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
from consultations.email_skeletons import EmailSkeletons
from consultations.levels import Level
from consultations.models import DoctorProfile, Question
from consultations.notifications import OutgoingEmail
from portal import times

logger = logging.getLogger(__name__)


class EscalationEmails:
    """Renders a sweep batch's escalation e-mails (consultations.email_skeletons: each
    kind's templates once per combination of follow-up, urgent and never warned).

    Recipients of the same question differ only in their time zone (the due time is
    shown in it) and in which site their link opens (the doctors' workbench or the
    staff admin). The due time is formatted once per question and time zone, the
    link reversed once per site, each recipient's site worked out once.
    """

    def __init__(self):
        self.skeletons = EmailSkeletons()
        self._due: dict[tuple, tuple[str, str]] = {}
        self._links: dict[str, Callable[[int], str]] = {}
        self._sites: dict[int, str] = {}

    def render(self, kind: str, question: Question, user, *, never_warned: bool) -> tuple[str, str]:
        time_zone = user.time_zone or settings.TIME_ZONE
        due, due_time = self.due(question, time_zone)
        # Doctors and staff get the patient's label, never their name or e-mail,
        # and no health details: those stay behind the login.
        return self.skeletons.render(
            kind,
            {"is_follow_up": question.is_follow_up, "is_urgent": question.is_urgent, "never_warned": never_warned},
            {
                "question.pk": str(question.pk),
                "patient_label": question.patient_label,
                "specialty": question.specialty.name,
                "due": due,
                "due_time": due_time,
                "url": self.link(question, self.site_for(user)),
            },
        )

    def due(self, question: Question, time_zone: str) -> tuple[str, str]:
        """The due time in the reader's zone, long and short; formatted here rather than
        with {% timezone %} and a filter in the template, for less than half the time."""
        key = (question.pk, time_zone)
        if key not in self._due:
            zone = times.as_zone(time_zone)
            moment = question.clock_due_at
            language = self.skeletons.language
            self._due[key] = (
                times.format_time(moment, times.LONG_DATE_TIME, zone, language),
                times.format_time(moment, "H:i", zone, language),
            )
        return self._due[key]

    def site_for(self, user) -> str:
        """`_site_for(user)`, once per recipient: a staff member without a doctor profile
        costs Django a RelatedObjectDoesNotExist raised and caught on every look, and the
        same few staff and seniors get most of a catch-up's e-mails."""
        try:
            return self._sites[user.pk]
        except KeyError:
            site = self._sites[user.pk] = _site_for(user)
            return site

    def link(self, question: Question, site: str) -> str:
        """Where the recipient works on the question (reversed once per site: consultations.links)."""
        if site not in self._links:
            self._links[site] = links.question_admin_urls(site)
        return settings.SITE_URL + self._links[site](question.pk)


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
