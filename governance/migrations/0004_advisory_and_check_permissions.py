"""Platform admins import advisories and see check results; the board sees them too."""

from django.db import migrations

from governance.migration_helpers import grant_permissions

GRANTS = {
    "Platform admins": ["reviews.add_advisory", "reviews.view_advisory", "reviews.view_checkrun",
                        "reviews.view_finding", "governance.add_hostplatform", "governance.change_hostplatform",
                        "governance.view_hostplatform", "governance.add_allowedlicence",
                        "governance.change_allowedlicence", "governance.view_allowedlicence"],
    "Approval board": ["reviews.view_advisory", "reviews.view_checkrun", "reviews.view_finding"],
    "Security reviewers": ["reviews.view_advisory"],
}


def grant(apps, schema_editor):
    grant_permissions(apps, GRANTS)


class Migration(migrations.Migration):
    dependencies = [
        ("governance", "0003_host_platforms_licences_stage_checks"),
        ("reviews", "0003_requeue_schedule"),
    ]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
