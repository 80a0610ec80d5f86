"""Platform admins see failed sign-ins and lockouts (django-axes) and lift a lockout by
deleting its access attempt (docs/runbook.md, "Sign-in lockout")."""

from django.db import migrations

from governance.migration_helpers import grant_permissions, revoke_permissions

AXES_PERMISSIONS = [
    "axes.view_accessattempt",
    "axes.delete_accessattempt",
    "axes.view_accesslog",
    "axes.view_accessfailurelog",
]


def forwards(apps, schema_editor):
    grant_permissions(apps, {"Platform admins": AXES_PERMISSIONS})


def backwards(apps, schema_editor):
    revoke_permissions(apps, {"Platform admins": AXES_PERMISSIONS})


class Migration(migrations.Migration):
    dependencies = [
        ("governance", "0015_risk_models_move_to_decisions"),
        ("axes", "0010_accessattemptexpiration"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
