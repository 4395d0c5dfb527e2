"""factory-boy factories for the portal's models."""

from datetime import timedelta

import factory
from django.utils import timezone

from consultations.models import DoctorProfile, Question, QuestionStatus, Reply, ReplyKind, Specialty
from portal.models import User
from tests import pinned

PASSWORD = "portal-test-pass"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    full_name = factory.Sequence(lambda n: f"Person Number{n}")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class SpecialtyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Specialty
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Specialty {n}")
    slug = factory.Sequence(lambda n: f"specialty-{n}")


class DoctorFactory(factory.django.DjangoModelFactory):
    """A verified doctor. Pass specialties=[...] to route questions to them."""

    class Meta:
        model = DoctorProfile
        skip_postgeneration_save = True

    user = factory.SubFactory(UserFactory)
    display_name = factory.Sequence(lambda n: f"Dr. Test Doctor{n}")
    slug = factory.Sequence(lambda n: f"dr-test-doctor{n}")
    qualifications = "MD"
    registration_number = factory.Sequence(lambda n: f"REG-{n:06d}")
    is_verified = True

    @factory.post_generation
    def specialties(obj, create, extracted, **kwargs):
        if create and extracted:
            obj.specialties.set(extracted)


# The clock a question gets under the pinned settings (tests/pinned.py), worked out
# here rather than by consultations.sla, so that a wrong rule there cannot agree with itself.
WARN_FRACTION = pinned.SETTINGS["SLA_WARN_FRACTION"]


def answer_window(is_urgent: bool) -> timedelta:
    hours = pinned.SETTINGS["SLA_URGENT_ANSWER_HOURS" if is_urgent else "SLA_ANSWER_HOURS"]
    return timedelta(hours=hours)


class QuestionFactory(factory.django.DjangoModelFactory):
    """An open question whose clock started at `submitted_at` (default: now)."""

    class Meta:
        model = Question

    patient = factory.SubFactory(UserFactory)
    specialty = factory.SubFactory(SpecialtyFactory)
    title = factory.Sequence(lambda n: f"Question number {n} about a rash")
    description = "A red, itchy rash on my forearm for three days."
    age = 34
    sex = "female"
    is_urgent = False
    submitted_at = factory.LazyFunction(timezone.now)
    due_at = factory.LazyAttribute(lambda o: o.submitted_at + answer_window(o.is_urgent))
    status = factory.LazyAttribute(
        lambda o: QuestionStatus.ANSWERED if o.answered_after is not None else QuestionStatus.OPEN
    )
    first_answered_at = factory.LazyAttribute(
        lambda o: o.submitted_at + o.answered_after if o.answered_after is not None else None
    )
    # An answered question has no running clock.
    clock_started_at = factory.LazyAttribute(lambda o: None if o.answered_after is not None else o.submitted_at)
    clock_due_at = factory.LazyAttribute(lambda o: None if o.answered_after is not None else o.due_at)
    clock_warn_at = factory.LazyAttribute(
        lambda o: None if o.answered_after is not None else o.submitted_at + (o.due_at - o.submitted_at) * WARN_FRACTION
    )

    class Params:
        # QuestionFactory(answered_after=timedelta(hours=1), answered_by=doctor)
        answered_after = None


def hours_ago(hours: float):
    return timezone.now() - timedelta(hours=hours)


class ReplyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Reply

    question = factory.SubFactory(QuestionFactory)
    author = factory.LazyAttribute(lambda o: o.question.patient)
    kind = ReplyKind.FOLLOW_UP
    body = "Thank you, doctor."
