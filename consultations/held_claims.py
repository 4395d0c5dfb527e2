"""Every change that can take a question away from a doctor releases their claims on it.

A doctor taken off a specialty, unverified or deactivated must not keep the open
questions they hold there: nobody else could claim them, and they could still answer.
These receivers call services.release_claims_doctor_may_not_hold on each such change
made through the ORM's signalling paths (the staff admin's form for a DoctorProfile or
a User, its specialties widget, the shell, seed and test code). A QuerySet.update()
sends no signal: code that changes is_verified or is_active that way calls the rule
itself. Each release runs inside the change's transaction and once more after it
commits, so a claim taken while the change was being written is released too.
"""

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models.signals import m2m_changed, post_save

from consultations.models import DoctorProfile, Question


def _release(doctors) -> None:
    from consultations.services import release_claims_doctor_may_not_hold

    doctors = list(doctors)
    for doctor in doctors:
        release_claims_doctor_may_not_hold(doctor)
    if transaction.get_connection().in_atomic_block:

        def again():
            for doctor in doctors:
                release_claims_doctor_may_not_hold(doctor)

        transaction.on_commit(again)


def _holders_in(specialty_ids) -> list[DoctorProfile]:
    from consultations.services import OPEN_STATUSES

    held = Question.objects.filter(status__in=OPEN_STATUSES, claimed_by__isnull=False)
    if specialty_ids is not None:
        held = held.filter(specialty__in=specialty_ids)
    return list(DoctorProfile.objects.filter(pk__in=held.values("claimed_by")))


def _specialties_changed(sender, instance, action, reverse, pk_set, **kwargs) -> None:
    if action not in ("post_remove", "post_clear"):
        return
    if not reverse:  # doctor.specialties.remove(...) / .clear() / .set(...)
        _release([instance])
    else:  # specialty.doctors.remove(...) / .clear(): the doctors holding its questions
        _release(_holders_in([instance.pk]))


def _profile_saved(sender, instance, created, update_fields=None, **kwargs) -> None:
    if created or (update_fields is not None and "is_verified" not in update_fields):
        return
    _release([instance])


def _account_saved(sender, instance, created, update_fields=None, **kwargs) -> None:
    if created or instance.is_active or (update_fields is not None and "is_active" not in update_fields):
        return
    _release(DoctorProfile.objects.filter(user=instance))


def connect() -> None:
    """Called once from ConsultationsConfig.ready()."""
    m2m_changed.connect(
        _specialties_changed, sender=DoctorProfile.specialties.through, dispatch_uid="held-claims-specialties"
    )
    post_save.connect(_profile_saved, sender=DoctorProfile, dispatch_uid="held-claims-profile")
    post_save.connect(_account_saved, sender=get_user_model(), dispatch_uid="held-claims-account")
