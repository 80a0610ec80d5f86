"""Compliance officers and platform admins edit unused framework versions and make new ones."""

from django.db import migrations

from governance.migration_helpers import grant_permissions

PERMS = ["compliance.add_framework", "compliance.change_framework", "compliance.add_control",
         "compliance.change_control", "compliance.delete_control", "compliance.view_control"]


def grant(apps, schema_editor):
    grant_permissions(apps, {"Compliance officers": PERMS, "Platform admins": PERMS})


class Migration(migrations.Migration):
    dependencies = [("compliance", "0005_re_review_schedule")]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
