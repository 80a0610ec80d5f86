"""Open due compliance re-reviews every hour; officers and admins see them."""

from django.db import migrations

from governance.migration_helpers import ensure_schedules, grant_permissions


def forwards(apps, schema_editor):
    ensure_schedules(apps, {"open-re-reviews": ("governance.tasks.open_re_reviews", 60)})
    grant_permissions(apps, {
        "Compliance officers": ["compliance.view_rereview", "compliance.view_evidence"],
        "Platform admins": ["compliance.view_rereview", "compliance.view_evidence"],
    })


class Migration(migrations.Migration):
    dependencies = [
        ("compliance", "0004_re_reviews"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
