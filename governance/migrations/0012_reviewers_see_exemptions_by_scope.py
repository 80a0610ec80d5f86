"""Reviewers no longer hold the global governance.view_exemption: it read as "every
organisation's exemptions". They see the exemptions of the versions they review through
governance.risk.selectors.exemptions_visible_to; the board and platform admins keep it."""

from django.db import migrations

from governance.migration_helpers import grant_permissions

REVIEWER_GROUPS = ["Security reviewers", "Performance reviewers", "Compliance officers"]
PERMISSION = ("governance", "view_exemption")


def forwards(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    permission = Permission.objects.filter(content_type__app_label=PERMISSION[0], codename=PERMISSION[1]).first()
    if permission is None:
        return  # nothing was granted
    for group in Group.objects.filter(name__in=REVIEWER_GROUPS):
        group.permissions.remove(permission)


def backwards(apps, schema_editor):
    grant_permissions(apps, {name: [".".join(PERMISSION)] for name in REVIEWER_GROUPS})


class Migration(migrations.Migration):
    dependencies = [("governance", "0011_risk_schedule_and_permissions")]

    operations = [migrations.RunPython(forwards, backwards)]
