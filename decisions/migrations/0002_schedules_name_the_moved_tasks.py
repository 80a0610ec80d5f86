"""The scheduled tasks that moved with their code: expiring exemptions is a decisions task now,
opening due re-reviews a compliance one. The schedules name them by dotted path. (A task
already queued under an old path, an auto-approval say, fails in the worker: drain the queue
before upgrading; docs/architecture.md.)"""

from django.db import migrations

RENAMED = {
    "governance.tasks.expire_exemptions": "decisions.tasks.expire_exemptions",
    "governance.tasks.open_re_reviews": "compliance.tasks.open_re_reviews",
    "governance.tasks.auto_approve": "decisions.tasks.auto_approve",
}


def _rename(apps, names: dict[str, str]) -> None:
    Schedule = apps.get_model("django_q", "Schedule")
    for old, new in names.items():
        Schedule.objects.filter(func=old).update(func=new)


def forwards(apps, schema_editor):
    _rename(apps, RENAMED)


def backwards(apps, schema_editor):
    _rename(apps, {new: old for old, new in RENAMED.items()})


class Migration(migrations.Migration):
    dependencies = [
        ("decisions", "0001_initial"),
        ("compliance", "0006_framework_editing_permissions"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
