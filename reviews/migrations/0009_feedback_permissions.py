"""Platform admins and the board read everyone's feedback."""

from django.db import migrations

from governance.migration_helpers import grant_permissions


def grant(apps, schema_editor):
    grant_permissions(apps, {"Platform admins": ["reviews.view_feedback"], "Approval board": ["reviews.view_feedback"]})


class Migration(migrations.Migration):
    dependencies = [("reviews", "0008_annotations_and_feedback")]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
