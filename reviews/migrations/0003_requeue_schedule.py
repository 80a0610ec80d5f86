"""Schedule the sweeper that re-queues check runs whose worker died."""

from django.db import migrations

from governance.migration_helpers import ensure_schedules

NAME = "requeue-stale-check-runs"


def create_schedule(apps, schema_editor):
    ensure_schedules(apps, {NAME: ("reviews.tasks.requeue_stale_check_runs", 5)})


def remove_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("reviews", "0002_checks_findings_advisories"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = [migrations.RunPython(create_schedule, remove_schedule)]
