"""Compliance officers and platform admins manage checklists; everyone reviewing sees frameworks."""

from django.db import migrations

from governance.migration_helpers import grant_permissions

GRANTS = {
    "Platform admins": ["compliance.view_framework", "compliance.add_checklist", "compliance.change_checklist",
                        "compliance.view_checklist"],
    "Compliance officers": ["compliance.view_framework", "compliance.add_checklist", "compliance.change_checklist",
                            "compliance.view_checklist"],
    "Approval board": ["compliance.view_framework", "compliance.view_checklist"],
}


def grant(apps, schema_editor):
    grant_permissions(apps, GRANTS)


class Migration(migrations.Migration):
    dependencies = [("compliance", "0001_initial"), ("governance", "0002_roles")]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
