"""Platform admins grant qualifications and record training."""

from django.db import migrations

from governance.migration_helpers import grant_permissions

GRANTS = {
    "Platform admins": [
        "reviews.add_reviewerqualification", "reviews.change_reviewerqualification",
        "reviews.view_reviewerqualification", "reviews.add_trainingrecord", "reviews.change_trainingrecord",
        "reviews.view_trainingrecord",
    ],
}


def grant(apps, schema_editor):
    grant_permissions(apps, GRANTS)


class Migration(migrations.Migration):
    dependencies = [("reviews", "0006_qualifications_and_assignment"), ("governance", "0006_qualifications_and_assignment")]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
