"""Building blocks of the access matrix (tests/security/test_access_matrix.py): the
people and records every row is tried on, the outcomes a row expects, and the walk
over the URLconf that finds every pattern taking an argument.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from axes.models import AccessAttempt, AccessFailureLog
from axes.models import AccessLog as LoginLog
from django.contrib.auth.models import Group, Permission
from django.contrib.auth.tokens import default_token_generator
from django.test import override_settings
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from django_otp.plugins.otp_totp.models import TOTPDevice

from articles import newsletter
from articles import services as article_services
from articles.models import ArticleViewDay, Subscriber
from consultations import services
from consultations.models import AccessLog, BreachCredit, Escalation, EscalationLevel, Notification, Question, SweepRun
from tests.articles.factories import ArticleFactory, TagFactory
from tests.factories import DoctorFactory, QuestionFactory, SpecialtyFactory, UserFactory
from tests.portal.sample_files import png_upload

# The kinds of visitor every row is tried as: the named people of tests/conftest.py, and
# the roles least privilege is about (issue 11): staff with no permission at all, an
# editor holding only the articles' permissions, a support desk that may view and edit
# users and reset their two-factor sign-in (not a superuser), and a doctor of the specialty whose
# second factor is pending (password accepted, device paired, no code entered yet,
# REQUIRE_2FA on).
USERS = (
    "anonymous",
    "patient",
    "other_patient",
    "doctor",
    "other_doctor",
    "unverified_doctor",
    "staff",
    "bare_staff",
    "editor",
    "support",
    "pending_doctor",
)
# Visitors the matrix signs in with REQUIRE_2FA on (for everyone else it is off).
SECOND_FACTOR_PENDING = frozenset({"pending_doctor"})


# --- The records ------------------------------------------------------------------------


@dataclass
class World:
    """One of everything a URL can point at, owned by the named people."""

    users: dict
    specialty: object
    other_specialty: object
    doctor: object  # the DoctorProfiles behind users["doctor"] etc.
    other_doctor: object
    unverified_doctor: object
    question: object  # the patient's: attachment, an answer, then a follow-up (claimed by `doctor`)
    attachment: object
    answer: object
    follow_up: object
    queue_question: object  # the patient's second question: open and unclaimed, in `specialty`
    assigned_question: object  # another specialty's question, handed to `doctor`
    draft: object  # an article draft by `doctor`
    in_review: object  # an article by `other_doctor`, waiting for review
    published: object
    tag: object
    view_day: object
    subscriber: object
    notification: object
    escalation: object
    sweep_run: object
    breach_credit: object
    access_log: object
    group: object
    totp_device: object
    login_attempt: object
    login_log: object
    login_failure: object
    reset_uid: str
    reset_token: str
    confirm_token: str
    unsubscribe_token: str
    private_root: Path


def build_world(private_root: Path) -> World:
    """Create the records through the services where they exist, so each is in a real state."""
    # A fast hasher, and the attachment written under the module's own private folder.
    with override_settings(
        PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"], PRIVATE_MEDIA_ROOT=private_root
    ):
        return _build_world(private_root)


def _build_world(private_root: Path) -> World:
    now = timezone.now()
    specialty = SpecialtyFactory(name="Dermatology", slug="dermatology")
    other_specialty = SpecialtyFactory(name="Cardiology", slug="cardiology")
    patient = UserFactory(email="patient@example.com", full_name="Paula Patient", age=34, sex="female")
    other_patient = UserFactory(email="other.patient@example.com", full_name="Otto Otherpatient")
    doctor = DoctorFactory(
        user=UserFactory(email="doctor@example.com"), display_name="Dr. Dana Derm", specialties=[specialty]
    )
    other_doctor = DoctorFactory(
        user=UserFactory(email="cardio@example.com"), display_name="Dr. Carl Cardio", specialties=[other_specialty]
    )
    unverified_doctor = DoctorFactory(
        user=UserFactory(email="unverified@example.com"),
        display_name="Dr. Uma Unverified",
        specialties=[specialty],
        is_verified=False,
    )
    staff = UserFactory(email="staff@example.com", is_staff=True, is_superuser=True)
    bare_staff = UserFactory(email="support@example.com", is_staff=True)
    editor = UserFactory(email="editor@example.com", is_staff=True)
    editor.user_permissions.add(*Permission.objects.filter(content_type__app_label="articles"))
    support = UserFactory(email="desk@example.com", is_staff=True)
    support.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="portal", codename__in=("view_user", "change_user", "reset_two_factor")
        )
    )
    pending_doctor = DoctorFactory(
        user=UserFactory(email="pending@example.com"), display_name="Dr. Pia Pending", specialties=[specialty]
    )
    TOTPDevice.objects.create(user=pending_doctor.user, name="Authenticator app", confirmed=True)
    # Never signs in during the matrix, so the reset token (tied to last_login) stays valid.
    forgetful = UserFactory(email="forgetful@example.com")

    question = services.submit_question(
        patient=patient,
        specialty=specialty,
        title="A rash on my forearm",
        description="Red and itchy for three days.",
        age=34,
        sex="female",
        files=[(png_upload("rash.png"), "image/png")],
        now=now - timedelta(hours=3),
    )
    answer = services.post_answer(question, doctor, "It looks like contact dermatitis.", now=now - timedelta(hours=2))
    follow_up = services.post_follow_up(question, patient, "It is spreading. What now?", now=now - timedelta(hours=1))
    queue_question = QuestionFactory(patient=patient, specialty=specialty, title="A mole that changed")
    assigned_question = QuestionFactory(patient=other_patient, specialty=other_specialty, title="Palpitations")
    # Held by `doctor` from before the services refused other specialties (or from before
    # their specialties changed): such a claim stays theirs to see.
    Question.objects.filter(pk=assigned_question.pk).update(claimed_by=doctor, claimed_at=now)

    draft = ArticleFactory(draft=True, title="Eczema basics", slug="eczema-basics", specialty=specialty, author=doctor)
    in_review = ArticleFactory(
        draft=True, title="Heart rhythm", slug="heart-rhythm", specialty=other_specialty, author=other_doctor
    )
    article_services.submit_for_review(in_review, by=other_doctor)
    tag = TagFactory(name="Skin", slug="skin")
    published = ArticleFactory(
        title="Sun protection", slug="sun-protection", specialty=specialty, author=doctor, reviewer=other_doctor
    )
    view_day = ArticleViewDay.objects.create(article=published, day=now.date(), views=3)
    subscriber = Subscriber.objects.create(email="reader@example.com", consented_at=now)

    sweep_run = SweepRun.objects.create(started_at=now, finished_at=now, host="matrix")
    escalation = Escalation.objects.create(
        question=question,
        level=EscalationLevel.AT_RISK,
        clock_due_at=question.clock_due_at or now,
        recipients=["lead@example.com"],
        sweep=sweep_run,
    )
    services.log_access(doctor.user, question, "view")
    login_fields = {
        "user_agent": "matrix",
        "ip_address": "192.0.2.1",
        "username": "patient@example.com",
        "http_accept": "*/*",
        "path_info": "/accounts/login/",
    }

    return World(
        users={
            "anonymous": None,
            "patient": patient,
            "other_patient": other_patient,
            "doctor": doctor.user,
            "other_doctor": other_doctor.user,
            "unverified_doctor": unverified_doctor.user,
            "staff": staff,
            "bare_staff": bare_staff,
            "editor": editor,
            "support": support,
            "pending_doctor": pending_doctor.user,
        },
        specialty=specialty,
        other_specialty=other_specialty,
        doctor=doctor,
        other_doctor=other_doctor,
        unverified_doctor=unverified_doctor,
        question=question,
        attachment=question.attachments.get(),
        answer=answer,
        follow_up=follow_up,
        queue_question=queue_question,
        assigned_question=assigned_question,
        draft=draft,
        in_review=in_review,
        published=published,
        tag=tag,
        view_day=view_day,
        subscriber=subscriber,
        notification=Notification.objects.filter(question=question).earliest("created_at"),
        escalation=escalation,
        sweep_run=sweep_run,
        breach_credit=BreachCredit.objects.create(
            patient=patient,
            question=question,
            is_follow_up=True,
            clock_due_at=now - timedelta(minutes=5),
            breached_at=now,
            minutes_late=5,
            kind="free_question",
            sweep=sweep_run,
        ),
        access_log=AccessLog.objects.get(question=question),
        group=Group.objects.create(name="Clinic leads"),
        totp_device=TOTPDevice.objects.create(user=doctor.user, name="Authenticator app", confirmed=True),
        login_attempt=AccessAttempt.objects.create(**login_fields, get_data="", post_data="", failures_since_start=1),
        login_log=LoginLog.objects.create(**login_fields),
        login_failure=AccessFailureLog.objects.create(**login_fields),
        reset_uid=urlsafe_base64_encode(force_bytes(forgetful.pk)),
        reset_token=default_token_generator.make_token(forgetful),
        confirm_token=newsletter.confirm_token(subscriber),
        unsubscribe_token=newsletter.unsubscribe_token(subscriber),
        private_root=private_root,
    )


# --- Expected outcomes ---------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What one visitor should get from one request.

    `location` gives the redirect's expected path; with `login_next` the redirect is a
    login page whose ?next= is the requested path. `changes` (for rows with a probe)
    says whether the request must change the records (True), must not (False), or
    either (None).
    """

    label: str
    statuses: tuple[int, ...]
    location: Callable[[World], str] | None = None
    login_next: bool = False
    changes: bool | None = None

    def changing(self) -> Outcome:
        return replace(self, changes=True, label=f"{self.label}, records changed")

    def unchanged(self) -> Outcome:
        return replace(self, changes=False, label=f"{self.label}, nothing changed")

    def problems(self, response, requested_path: str, world: World) -> list[str]:
        status = response.status_code
        location = response.get("Location", "")
        if status not in self.statuses:
            return [f"status {status}" + (f" to {location}" if location else "")]
        if self.location is None or not 300 <= status < 400:
            return []
        target = urlsplit(location)
        wanted = self.location(world)
        if target.path != wanted:
            return [f"redirect to {location}, not {wanted}"]
        if self.login_next and parse_qs(target.query).get("next") != [requested_path]:
            return [f"login redirect {location} does not come back to {requested_path}"]
        return []


OK = Outcome("200", (200,))
BAD_REQUEST = Outcome("400", (400,))
FORBIDDEN = Outcome("403", (403,))
NOT_FOUND = Outcome("404", (404,))
DENIED = Outcome("403 or 404", (403, 404))


def listed_again(to: Callable[[World], str]) -> Outcome:
    """A refused or unknown admin action: the list again, shown (200) or redirected to (302)."""
    return Outcome("the list again", (200, 302), location=to)


def redirect(to: Callable[[World], str], label: str = "") -> Outcome:
    return Outcome(f"302 to {label or 'the expected page'}", (302,), location=to)


def login(path: str, label: str) -> Outcome:
    return Outcome(f"302 to {label}", (302,), location=lambda world: path, login_next=True)


SITE_LOGIN = login("/accounts/login/", "the site's login")
# A pending second factor: every page sends to the code page, and back afterwards.
ENTER_CODE = login("/accounts/2fa/verify/", "the 2FA code page")
ADMIN_LOGIN = login("/admin/login/", "the staff admin's login")
DOCTOR_LOGIN = login("/doctor/login/", "the workbench's login")


def admin_index_redirect(site_name: str) -> Outcome:
    """The admin's answer for an object outside the user's queryset: "no such object", back to the index."""
    return redirect(lambda world: reverse(f"{site_name}:index"), f"the {site_name} index (no such object)")


def expect(default: Outcome | None = None, **per_user: Outcome) -> dict[str, Outcome]:
    """Outcomes for every visitor: the named ones, and `default` for the rest.

    A visitor whose second factor is pending is sent to enter a code from every page
    (changing nothing) unless the row names them.
    """
    unknown = set(per_user) - set(USERS)
    if unknown:
        raise ValueError(f"Unknown users in the matrix: {sorted(unknown)}")
    missing = [who for who in USERS if who not in per_user and default is None and who not in SECOND_FACTOR_PENDING]
    if missing:
        raise ValueError(f"No outcome for {missing}")
    outcomes = {who: per_user.get(who, default) for who in USERS}
    checks_changes = any(outcome is not None and outcome.changes is not None for outcome in outcomes.values())
    for who in SECOND_FACTOR_PENDING - set(per_user):
        outcomes[who] = ENTER_CODE.unchanged() if checks_changes else ENTER_CODE
    return outcomes


# --- Rows ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One request, tried as every visitor.

    `probe` reads the records the request could change (compared before and after);
    `prepare` is what the visitor does first (as themselves), such as opening a page;
    `bugs` names visitors for whom the code is known to disagree with the rule: their
    cell is a strict xfail, so the suite stays green while the bug stays visible.
    """

    id: str
    url: Callable[[World], str]
    expected: Mapping[str, Outcome]
    method: str = "get"
    data: Callable[[World], dict] | None = None
    probe: Callable[[World], object] | None = None
    bugs: Mapping[str, str] = field(default_factory=dict)
    prepare: Callable[[World, object], None] | None = None

    def __post_init__(self):
        if set(self.expected) != set(USERS):
            raise ValueError(f"{self.id}: outcomes must name every visitor")
        needs_probe = any(outcome.changes is not None for outcome in self.expected.values())
        if needs_probe and self.probe is None:
            raise ValueError(f"{self.id}: an outcome checks for changes but the row has no probe")


# --- The URLconf ----------------------------------------------------------------------------


def join_route(prefix: str, route: str) -> str:
    """The same joining as django.urls.URLResolver, so routes compare with ResolverMatch.route."""
    if not prefix:
        return route
    return prefix + route.removeprefix("^")


def iter_patterns(patterns=None, prefix: str = "") -> Iterator[tuple[str, str | None]]:
    """Every URL pattern of the project (admin sites included) as (full route, name)."""
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        route = join_route(prefix, str(pattern.pattern))
        if isinstance(pattern, URLResolver):
            yield from iter_patterns(pattern.url_patterns, route)
        elif isinstance(pattern, URLPattern):
            yield route, pattern.name


def takes_argument(route: str) -> bool:
    """A path converter (<int:pk>, <path:object_id>, <token>) or a named regex group."""
    return "<" in route
