"""Specialties, doctors, patients' questions and everything the guarantee needs.

The guarantee clock lives on the question itself (`clock_*`, `warned_at`,
`breached_at`): one clock runs while an answer is awaited (the first answer or
the answer to a follow-up). `due_at` keeps the first answer's guarantee for
reporting. The rules that move these fields live in `sla.py` and
`services.py`, not here.
"""

import math
import uuid
from pathlib import Path

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import cached_property

from consultations.levels import LEVELS
from consultations.storage import PrivateStorage, private_storage  # noqa: F401 - migration 0001 names PrivateStorage here
from portal.models import Sex


class Specialty(models.Model):
    name = models.CharField(max_length=80, unique=True)
    slug = models.SlugField(max_length=80, unique=True)
    description = models.TextField(blank=True)
    sort_order = models.PositiveSmallIntegerField(default=100)
    # Set once by the duty-cover check when open questions wait and no doctor is on
    # duty (staff are alerted then); cleared when someone is on duty again.
    uncovered_since = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["sort_order", "name"]
        verbose_name_plural = "specialties"

    def __str__(self):
        return self.name


def doctor_photo_path(instance, filename):
    return f"doctors/{uuid.uuid4().hex}{Path(filename).suffix.lower()}"


class DoctorProfileQuerySet(models.QuerySet):
    def verified(self):
        """Doctors who may practise here: the SQL form of DoctorProfile.may_practise."""
        return self.filter(is_verified=True, user__is_active=True)


class DoctorProfile(models.Model):
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="doctor_profile")
    display_name = models.CharField(max_length=120, help_text='As shown to patients, e.g. "Dr. Anna Kowal".')
    slug = models.SlugField(max_length=120, unique=True)
    qualifications = models.CharField(max_length=200, blank=True, help_text="e.g. MD, specialist in dermatology")
    registration_number = models.CharField(max_length=40, unique=True)
    specialties = models.ManyToManyField(Specialty, related_name="doctors")
    photo = models.ImageField(upload_to=doctor_photo_path, blank=True)
    bio = models.TextField(blank=True)
    is_verified = models.BooleanField(default=False, help_text="Only verified doctors see the queue.")
    is_senior = models.BooleanField(default=False, help_text="Senior doctors receive breach escalations.")
    # The doctor's own switch (consultations.duty decides what "on duty" means).
    off_duty = models.BooleanField(
        default=False,
        help_text="Switched off duty: no new-work e-mails and never counted on duty, whatever the schedule.",
    )
    on_duty_until = models.DateTimeField(
        null=True, blank=True, help_text="Switched on duty outside the weekly schedule until this time."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = DoctorProfileQuerySet.as_manager()

    class Meta:
        ordering = ["display_name"]

    def __str__(self):
        return self.display_name

    def get_absolute_url(self):
        return reverse("doctor_profile", args=[self.slug])

    @property
    def may_practise(self) -> bool:
        """The one clinician rule: verified by staff, with an active account. Only such a
        doctor sees the queue, is handed questions or counts on duty (SQL form:
        DoctorProfile.objects.verified())."""
        return self.is_verified and self.user.is_active


class Weekday(models.IntegerChoices):
    MONDAY = 0, "Monday"
    TUESDAY = 1, "Tuesday"
    WEDNESDAY = 2, "Wednesday"
    THURSDAY = 3, "Thursday"
    FRIDAY = 4, "Friday"
    SATURDAY = 5, "Saturday"
    SUNDAY = 6, "Sunday"


class DutyPeriod(models.Model):
    """One weekly period on duty, in the doctor's own time zone (their account's).

    An end at or before the start runs past midnight into the next day
    (Friday 22:00-06:00 ends on Saturday at 06:00; 08:00-08:00 is 24 hours).
    """

    doctor = models.ForeignKey(DoctorProfile, on_delete=models.CASCADE, related_name="duty_periods")
    weekday = models.PositiveSmallIntegerField(choices=Weekday.choices)
    start = models.TimeField()
    end = models.TimeField(help_text="At or before the start: the period ends the next day (00:00-00:00: all day).")

    class Meta:
        ordering = ["doctor", "weekday", "start"]

    def __str__(self):
        return f"{self.get_weekday_display()} {self.start:%H:%M}-{self.end:%H:%M}"

    @property
    def crosses_midnight(self) -> bool:
        return self.end <= self.start


class QuestionStatus(models.TextChoices):
    OPEN = "open", "Waiting for a doctor"
    INFO_REQUESTED = "info_requested", "Doctor asked for more information"
    ANSWERED = "answered", "Answered"
    CLOSED = "closed", "Closed"


class QuestionQuerySet(models.QuerySet):
    def awaiting_doctor(self):
        """Questions whose guarantee clock is running (a doctor's answer is owed)."""
        return self.filter(status=QuestionStatus.OPEN)


class Question(models.Model):
    patient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="questions")
    specialty = models.ForeignKey(Specialty, on_delete=models.PROTECT, related_name="questions")
    title = models.CharField(max_length=150)
    description = models.TextField(max_length=5000)
    age = models.PositiveSmallIntegerField(validators=[MinValueValidator(0), MaxValueValidator(120)])
    sex = models.CharField(max_length=10, choices=Sex.choices)
    medical_history = models.TextField(max_length=3000, blank=True)
    current_medication = models.TextField(max_length=2000, blank=True)
    status = models.CharField(max_length=20, choices=QuestionStatus.choices, default=QuestionStatus.OPEN)
    is_urgent = models.BooleanField(default=False, help_text="Emergency red flags found in the text.")
    red_flags = models.JSONField(default=list, blank=True, help_text="The red-flag phrases that matched.")

    submitted_at = models.DateTimeField(default=timezone.now)
    # The first answer's guarantee: submission + window (+ time paused waiting
    # for the patient before the first answer). Kept for reporting.
    due_at = models.DateTimeField()
    first_answered_at = models.DateTimeField(null=True, blank=True)
    answered_by = models.ForeignKey(
        DoctorProfile, null=True, blank=True, on_delete=models.SET_NULL, related_name="answered_questions"
    )

    # The clock currently running (first answer or follow-up); null when no
    # doctor's answer is owed.
    clock_started_at = models.DateTimeField(null=True, blank=True)
    clock_warn_at = models.DateTimeField(null=True, blank=True)
    clock_due_at = models.DateTimeField(null=True, blank=True)
    clock_paused_at = models.DateTimeField(null=True, blank=True)
    is_follow_up = models.BooleanField(default=False, help_text="The running clock is for a follow-up.")
    # Each escalation level's marker (`warned_at`, `breached_at`, ...) is added
    # below from consultations.levels.
    # One bad row must not stop the sweep: its error is recorded here and the
    # row is retried after sweep_retry_at.
    sweep_error = models.TextField(blank=True)
    sweep_retry_at = models.DateTimeField(null=True, blank=True)

    claimed_by = models.ForeignKey(
        DoctorProfile, null=True, blank=True, on_delete=models.SET_NULL, related_name="claimed_questions"
    )
    claimed_at = models.DateTimeField(null=True, blank=True)

    rating = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(5)]
    )
    rating_comment = models.TextField(max_length=2000, blank=True)
    rated_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    # The one-time token of the ask form that sent it: a double click, a replay or a
    # retry after a lost connection finds this question instead of making another.
    # Null for questions not sent through the form (demo data, older rows).
    submission_token = models.UUIDField(null=True, blank=True, editable=False)

    objects = QuestionQuerySet.as_manager()

    class Meta:
        ordering = ["-submitted_at"]
        permissions = [
            ("view_sla_dashboard", "Can view the SLA dashboard"),
            ("reassign_question", "Can reassign a question to another doctor"),
            # Staff status grants nothing clinical: reading patients' questions, replies
            # and files needs this (consultations.access.may_read_medical_records).
            ("view_medical_record", "Can read patients' questions, replies and attachments"),
        ]
        constraints = [
            # One submission, one question (nulls never collide).
            models.UniqueConstraint(fields=["patient", "submission_token"], name="question_one_per_submission"),
        ]
        indexes = [
            models.Index(fields=["patient", "-submitted_at"], name="question_patient_idx"),
            # The doctors' queue: open questions, urgent first, then due time.
            models.Index(
                fields=["specialty", "-is_urgent", "clock_due_at"],
                name="question_queue_idx",
                condition=Q(status__in=["open", "info_requested"]),
            ),
            # The sweep: one partial index per escalation level over the rows owing it
            # (a running, unpaused clock without the level's marker), so its cost
            # follows the questions due, not the questions stored.
            *(
                models.Index(fields=[level.order_by], name=level.index_name, condition=level.owed_q())
                for level in LEVELS
            ),
            models.Index(fields=["submitted_at"], name="question_submitted_idx"),
            # Answers in a time range, with what the dashboard's trend (answered within the
            # guarantee: due_at) and the forecast's pace (claim to answer: claimed_at) read of
            # them, so both count from the index alone (migration 0012).
            models.Index(fields=["first_answered_at", "due_at", "claimed_at"], name="question_answered_idx"),
        ]

    def __str__(self):
        # Never the title: this name shows wherever a question is referred to (the
        # access log, escalations, the outbox, the admin's history), to staff who
        # may not read patients' text.
        return f"Question #{self.pk}"

    def get_absolute_url(self):
        return reverse("consultations:question_detail", args=[self.pk])

    @property
    def patient_label(self) -> str:
        return self.patient.patient_label


class ReplyKind(models.TextChoices):
    ANSWER = "answer", "Doctor's answer"
    INFO_REQUEST = "info_request", "Doctor asked for more information"
    FOLLOW_UP = "follow_up", "Patient's follow-up"


class Reply(models.Model):
    question = models.ForeignKey(Question, on_delete=models.CASCADE, related_name="replies")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="replies")
    doctor = models.ForeignKey(
        DoctorProfile,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="replies",
        help_text="Set when a doctor wrote the reply.",
    )
    kind = models.CharField(max_length=20, choices=ReplyKind.choices)
    body = models.TextField(max_length=10000)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "pk"]
        verbose_name_plural = "replies"

    def __str__(self):
        return f"{self.get_kind_display()} on #{self.question_id}"

    @property
    def is_from_doctor(self) -> bool:
        return self.kind in (ReplyKind.ANSWER, ReplyKind.INFO_REQUEST)


def attachment_path(instance, filename):
    # Random names: nothing the patient named reaches the disk.
    return f"attachments/{timezone.now():%Y/%m}/{uuid.uuid4().hex}"


class Attachment(models.Model):
    question = models.ForeignKey(Question, on_delete=models.CASCADE, related_name="attachments")
    reply = models.ForeignKey(Reply, null=True, blank=True, on_delete=models.CASCADE, related_name="attachments")
    file = models.FileField(upload_to=attachment_path, storage=private_storage, max_length=200)
    original_name = models.CharField(max_length=255, help_text="Shown to the patient only.")
    content_type = models.CharField(max_length=100)
    size = models.PositiveIntegerField()
    uploaded_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["uploaded_at", "pk"]

    def __str__(self):
        return f"Attachment {self.pk} ({self.content_type})"

    @cached_property
    def extension(self) -> str:
        return {"image/jpeg": "jpg", "image/png": "png", "application/pdf": "pdf"}.get(self.content_type, "bin")

    @property
    def neutral_name(self) -> str:
        """A file name that says nothing about the patient (for doctors)."""
        return f"question-{self.question_id}-attachment-{self.pk}.{self.extension}"


# The levels' choices, named after their keys (EscalationLevel.AT_RISK == "at_risk").
EscalationLevel = models.TextChoices(
    "EscalationLevel", [(level.key.upper(), (level.key, level.label)) for level in LEVELS]
)


class Escalation(models.Model):
    question = models.ForeignKey(Question, on_delete=models.CASCADE, related_name="escalations")
    level = models.CharField(max_length=20, choices=EscalationLevel.choices)
    is_follow_up = models.BooleanField(default=False)
    clock_due_at = models.DateTimeField(help_text="The due time of the clock that escalated.")
    created_at = models.DateTimeField(default=timezone.now)
    recipients = models.JSONField(default=list, help_text="E-mail addresses notified.")
    sweep = models.ForeignKey("SweepRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="escalations")

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # Belt and braces for "exactly once": one escalation per level per clock.
            models.UniqueConstraint(fields=["question", "level", "clock_due_at"], name="escalation_once_per_clock"),
        ]
        indexes = [models.Index(fields=["created_at"], name="escalation_created_idx")]

    def __str__(self):
        return f"{self.get_level_display()} #{self.question_id}"


class NotificationStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed (gave up)"


class Notification(models.Model):
    """Outbox: written in the transaction that causes it, sent by Celery after commit."""

    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="notifications"
    )
    to_email = models.EmailField()
    kind = models.CharField(max_length=50, help_text="The e-mail template under templates/emails/.")
    subject = models.CharField(max_length=200)
    body = models.TextField()
    question = models.ForeignKey(
        Question, null=True, blank=True, on_delete=models.CASCADE, related_name="notifications"
    )
    # Unique (Meta.constraints): the same message can never be queued twice.
    dedupe_key = models.CharField(max_length=200)
    status = models.CharField(max_length=10, choices=NotificationStatus.choices, default=NotificationStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    # A sender holds the row until this time; after it another may retry.
    locked_until = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["next_attempt_at"], name="notification_pending_idx", condition=Q(status="pending")),
        ]
        # A constraint, not unique=True on the field: on PostgreSQL that also built a
        # varchar_pattern_ops twin of the index for LIKE lookups, which nothing makes and
        # every row write paid for (migration 0013, with the table's fillfactor).
        constraints = [models.UniqueConstraint(fields=["dedupe_key"], name="notification_dedupe_key_unique")]

    def __str__(self):
        return f"{self.kind} to {self.to_email} ({self.status})"


class SweepRun(models.Model):
    """The heartbeat: one row per SLA sweep, with what it did."""

    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The running sweep's sign of life, written at its start and after every batch:
    # a long catch-up keeps /healthz green while it works; a crashed one goes stale.
    progress_at = models.DateTimeField(null=True, blank=True)
    # One counter per escalation level (`warned`, `breached`, ...), added below from consultations.levels.
    errors = models.PositiveIntegerField(default=0)
    host = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["-started_at"], name="sweeprun_started_idx")]

    def __str__(self):
        return f"Sweep {self.started_at:%Y-%m-%d %H:%M:%S}"


class AccessLog(models.Model):
    """Who opened which question, and where."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    question = models.ForeignKey(Question, on_delete=models.CASCADE, related_name="access_logs")
    attachment = models.ForeignKey(Attachment, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    action = models.CharField(max_length=40, help_text="e.g. view, download")
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["question", "-created_at"], name="accesslog_question_idx")]

    def __str__(self):
        return f"{self.user} {self.action} #{self.question_id}"


class CreditKind(models.TextChoices):
    REFUND = "refund", "Refund of the question's fee"
    FREE_QUESTION = "free_question", "A free question"
    NONE = "none", "No credit (breach recorded only)"


# What the patient reads: "We have recorded {text} for you." Nothing for NONE.
CREDIT_PATIENT_TEXT = {
    CreditKind.REFUND: "a refund of this question's fee",
    CreditKind.FREE_QUESTION: "a free question",
    CreditKind.NONE: "",
}


class BreachCredit(models.Model):
    """The ledger of broken promises: one row per breached guarantee clock, written by
    the SLA sweep in the transaction that records the breach (consultations.credits).

    A row is never edited: `minutes_late` is how late the answer was when the sweep
    recorded the breach; how late it finally came is read from the thread
    (`credits.final_minutes_late`). Nothing clinical is stored here. A follow-up's
    clock that breaches is a new clock (a new due time), so it earns its own row.
    No payment is made from here: the kind says what the patient is owed.
    """

    patient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="breach_credits")
    question = models.ForeignKey(Question, on_delete=models.PROTECT, related_name="breach_credits")
    is_follow_up = models.BooleanField(default=False, help_text="The breached clock was a follow-up's.")
    clock_due_at = models.DateTimeField(help_text="The guaranteed time that passed.")
    breached_at = models.DateTimeField(help_text="When the sweep recorded the breach.")
    minutes_late = models.PositiveIntegerField(help_text="Minutes past the guaranteed time when recorded.")
    kind = models.CharField(max_length=20, choices=CreditKind.choices)
    sweep = models.ForeignKey("SweepRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-breached_at", "-pk"]
        constraints = [
            # One breach, one credit: the same key as the breach escalation's.
            models.UniqueConstraint(fields=["question", "clock_due_at"], name="breach_credit_once_per_clock"),
        ]
        indexes = [
            models.Index(fields=["patient", "-breached_at"], name="breach_credit_patient_idx"),
            models.Index(fields=["breached_at"], name="breach_credit_breached_idx"),
        ]

    def __str__(self):
        return f"Breach credit #{self.pk} on question #{self.question_id}"

    @property
    def patient_text(self) -> str:
        return CREDIT_PATIENT_TEXT.get(self.kind, "")

    @property
    def final_minutes_late(self) -> int | None:
        """How late the answer finally came (from the guaranteed time that passed; later
        waits for the patient included). Needs `answered_at` from credits.with_answer;
        None while unanswered."""
        answered_at = getattr(self, "answered_at", None)
        if answered_at is None:
            return None
        return max(1, math.ceil((answered_at - self.clock_due_at).total_seconds() / 60))


class QuestionDraft(models.Model):
    """A question typed before signing up or logging in (issue 15, "question first").

    Reached only through a random token kept in the visitor's session (stored
    here as its SHA-256), or, once claimed, by its owner. A sign-up made in the
    same session links it to the pending account, so finishing the sign-up
    through the e-mailed link (which asks for the sign-up password) hands it to
    that account even in another browser. Nothing is sent to a doctor until the
    signed-in patient confirms the ask form; drafts expire after
    QUESTION_DRAFT_HOURS (consultations/drafts.py).
    """

    token_hash = models.CharField(max_length=64, unique=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    pending_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    specialty = models.ForeignKey(Specialty, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    title = models.CharField(max_length=150)
    description = models.TextField(max_length=5000)
    saved_at = models.DateTimeField(default=timezone.now, db_index=True)

    def __str__(self):
        return f"Question draft #{self.pk}"


def _add_level_columns() -> None:
    """Each escalation level's marker on Question and counter on SweepRun (see consultations.levels)."""
    for level in LEVELS:
        Question.add_to_class(level.marker, models.DateTimeField(null=True, blank=True))
        SweepRun.add_to_class(level.counter, models.PositiveIntegerField(default=0))


_add_level_columns()
