"""Warn about and expire exemptions every hour; who may see and change rubrics, policies,
ratings and exemptions (the board approves exemptions by role, checked in the service)."""

from django.db import migrations

from governance.migration_helpers import ensure_schedules, grant_permissions

READ = [
    "governance.view_riskrubric", "governance.view_riskrating", "governance.view_policy",
    "governance.view_policyevaluation", "governance.view_exemption",
]
REVIEWERS = [*READ, "governance.add_exemption"]


def forwards(apps, schema_editor):
    ensure_schedules(apps, {"expire-exemptions": ("governance.tasks.expire_exemptions", 60)})
    grant_permissions(apps, {
        "Platform admins": [*REVIEWERS, "governance.change_riskrubric"],
        "Approval board": REVIEWERS,
        "Security reviewers": REVIEWERS,
        "Performance reviewers": REVIEWERS,
        "Compliance officers": REVIEWERS,
    })


class Migration(migrations.Migration):
    dependencies = [
        ("governance", "0010_risk_rubrics_policies_exemptions"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
