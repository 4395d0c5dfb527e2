"""A pending sign-up is marked by the sign-up (User.signup_pending_since), no longer
inferred from "inactive and never signed in" (which also took accounts the clinic
closed before their first sign-in, staff and doctors included).

The data step marks the accounts that are sign-ups in flight at the deploy, so their
e-mailed links still finish: inactive, never signed in, and without any privilege
(not staff or superuser, no doctor profile, no groups, no permissions of their own).
A plain patient account that staff created and closed before its first sign-in looks
the same and is marked too; it holds no privilege (see the report of this change).
Reversed, the mark is dropped with the column."""

from django.db import migrations, models
from django.db.models import F


def mark_sign_ups_in_flight(apps, schema_editor):
    User = apps.get_model("portal", "User")
    DoctorProfile = apps.get_model("consultations", "DoctorProfile")
    in_flight = User.objects.filter(
        is_active=False,
        last_login__isnull=True,
        is_staff=False,
        is_superuser=False,
        signup_pending_since__isnull=True,
        groups__isnull=True,
        user_permissions__isnull=True,
    ).exclude(pk__in=DoctorProfile.objects.values("user_id"))
    # Inactive accounts have no session, hence no cached copy (portal.user_copy) to mark.
    User.objects.filter(pk__in=in_flight.values("pk")).update(signup_pending_since=F("date_joined"))


def unmark_sign_ups(apps, schema_editor):
    apps.get_model("portal", "User").objects.filter(signup_pending_since__isnull=False).update(
        signup_pending_since=None
    )


class Migration(migrations.Migration):
    dependencies = [
        ("portal", "0001_initial"),
        ("consultations", "0002_initial"),  # DoctorProfile.user
    ]

    operations = [
        migrations.AddField(
            model_name="user",
            name="signup_pending_since",
            field=models.DateTimeField(
                blank=True,
                editable=False,
                help_text="Signed up on the site and not finished yet (the e-mailed link opens the account).",
                null=True,
                verbose_name="sign-up pending since",
            ),
        ),
        migrations.RunPython(mark_sign_ups_in_flight, unmark_sign_ups, elidable=False),
    ]
