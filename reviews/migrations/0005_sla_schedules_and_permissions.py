"""Schedule the SLA sweep and the notification sender; let admins see breaches and edit calendars."""

from django.db import migrations

from governance.migration_helpers import ensure_schedules, grant_permissions

SCHEDULES = {
    "sweep-slas": ("reviews.tasks.sweep_slas", 5),
    "send-notifications": ("governance.tasks.send_notifications", 1),
}
GRANTS = {
    "Platform admins": [
        "reviews.view_slabreach", "governance.add_workingcalendar", "governance.change_workingcalendar",
        "governance.view_workingcalendar", "governance.add_holiday", "governance.change_holiday",
        "governance.delete_holiday", "governance.view_holiday", "governance.add_reviewerprofile",
        "governance.change_reviewerprofile", "governance.view_reviewerprofile",
    ],
    "Approval board": ["reviews.view_slabreach"],
}


def forwards(apps, schema_editor):
    ensure_schedules(apps, SCHEDULES)
    grant_permissions(apps, GRANTS)


def backwards(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name__in=SCHEDULES).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("reviews", "0004_sla_signals_and_breaches"),
        ("governance", "0005_calendars_notifications_sla_settings"),
        ("governance", "0004_advisory_and_check_permissions"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
