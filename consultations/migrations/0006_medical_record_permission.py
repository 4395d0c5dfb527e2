"""Reading patients' records needs an explicit permission; a "Clinical staff" group holds it.

Staff status alone used to open every question on the workbench. The group is
created here (and by seed_demo) so that granting clinical access is one click in
the admin. Permissions are normally created after all migrations: the ones the
group needs are created here if missing, with the names Django gives them.
"""

from django.db import migrations

GROUP = "Clinical staff"
PERMISSIONS = {
    ("question", "view_medical_record"): "Can read patients' questions, replies and attachments",
    ("question", "view_question"): "Can view question",
    ("reply", "view_reply"): "Can view reply",
    ("attachment", "view_attachment"): "Can view attachment",
}


def create_clinical_group(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    group, _ = Group.objects.get_or_create(name=GROUP)
    for (model, codename), name in PERMISSIONS.items():
        content_type, _ = ContentType.objects.get_or_create(app_label="consultations", model=model)
        permission, _ = Permission.objects.get_or_create(
            content_type=content_type, codename=codename, defaults={"name": name}
        )
        group.permissions.add(permission)


def remove_clinical_group(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name=GROUP).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("consultations", "0005_attachment_private_storage"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="question",
            options={
                "ordering": ["-submitted_at"],
                "permissions": [
                    ("view_sla_dashboard", "Can view the SLA dashboard"),
                    ("reassign_question", "Can reassign a question to another doctor"),
                    ("view_medical_record", "Can read patients' questions, replies and attachments"),
                ],
            },
        ),
        migrations.RunPython(create_clinical_group, remove_clinical_group),
    ]
