"""The portal's user: logs in by e-mail, carries the patient's profile."""

import secrets
import zoneinfo

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.core.validators import MaxValueValidator
from django.db import models
from django.utils import timezone

# Unambiguous characters for the short code doctors see instead of a name.
_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def new_patient_code() -> str:
    return "".join(secrets.choice(_CODE_ALPHABET) for _ in range(6))


def time_zone_choices():
    return [(name, name.replace("_", " ")) for name in sorted(zoneinfo.available_timezones())]


class Sex(models.TextChoices):
    FEMALE = "female", "Female"
    MALE = "male", "Male"
    OTHER = "other", "Other / prefer to describe"


class UserManager(BaseUserManager):
    use_in_migrations = True

    def _create_user(self, email, password, **extra):
        if not email:
            raise ValueError("An e-mail address is required")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email, password=None, **extra):
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra)

    def create_superuser(self, email, password=None, **extra):
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self._create_user(email, password, **extra)

    def get_by_natural_key(self, username):
        return self.get(email__iexact=username)


class User(AbstractBaseUser, PermissionsMixin):
    email = models.EmailField("e-mail address", unique=True)
    full_name = models.CharField(max_length=150, blank=True)
    # Shown to doctors instead of the name: "Patient #K7Q2XD".
    patient_code = models.CharField(max_length=12, unique=True, default=new_patient_code, editable=False)
    age = models.PositiveSmallIntegerField(null=True, blank=True, validators=[MaxValueValidator(120)])
    sex = models.CharField(max_length=10, choices=Sex.choices, blank=True)
    time_zone = models.CharField(max_length=64, default=settings.TIME_ZONE, choices=time_zone_choices)
    is_staff = models.BooleanField(default=False, help_text="Can log into the staff admin.")
    is_active = models.BooleanField(default=True)
    date_joined = models.DateTimeField(default=timezone.now)
    # Set only by a sign-up (portal.signup.register) creating the inactive account, and
    # cleared when the account opens: "inactive and never signed in" would also take an
    # account the clinic closed before its first sign-in for a sign-up to finish.
    signup_pending_since = models.DateTimeField(
        "sign-up pending since",
        null=True,
        blank=True,
        editable=False,
        help_text="Signed up on the site and not finished yet (the e-mailed link opens the account).",
    )

    objects = UserManager()

    EMAIL_FIELD = "email"
    USERNAME_FIELD = "email"
    REQUIRED_FIELDS = []

    class Meta:
        ordering = ["email"]
        # Its own permission, not "change user": the second factor is what stops a
        # password alone, so lifting it is given to whoever handles lost phones only.
        permissions = [("reset_two_factor", "Can reset a user's two-factor sign-in")]

    def __str__(self):
        return self.email

    def save(self, *args, **kwargs):
        # However the account opens (the e-mailed link, or staff ticking "active"), it is
        # no longer a sign-up to finish: closed again later, it must stay closed.
        if self.is_active and self.signup_pending_since is not None:
            self.signup_pending_since = None
            update_fields = kwargs.get("update_fields")
            if update_fields is not None and "signup_pending_since" not in update_fields:
                kwargs["update_fields"] = [*update_fields, "signup_pending_since"]
        super().save(*args, **kwargs)

    @property
    def patient_label(self) -> str:
        return f"Patient #{self.patient_code}"

    def get_full_name(self):
        return self.full_name or self.email

    def get_short_name(self):
        return self.full_name.split(" ")[0] if self.full_name else self.email
