"""Send webhooks every minute; platform admins configure endpoints and read the delivery log."""

from django.db import migrations

from governance.migration_helpers import ensure_schedules, grant_permissions


def forwards(apps, schema_editor):
    ensure_schedules(apps, {"send-webhooks": ("governance.tasks.send_webhooks", 1)})
    grant_permissions(apps, {"Platform admins": [
        "governance.add_webhookendpoint", "governance.change_webhookendpoint", "governance.view_webhookendpoint",
        "governance.view_webhookdelivery", "governance.view_webhookattempt",
    ]})


class Migration(migrations.Migration):
    dependencies = [("governance", "0007_webhooks"), ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
