"""Who may read the feed (``decisions.read_feed``, GET /api/v1/feed/ and the TUF repository):
the platform admins, and a new group, *Host platforms*, for the integration users whose API
tokens host platforms poll with. The group holds nothing else (docs/hosts.md)."""

from django.db import migrations

from governance.migration_helpers import grant_permissions

READ_FEED = "decisions.read_feed"
READERS = ("Platform admins", "Host platforms")


def forwards(apps, schema_editor):
    grant_permissions(apps, {name: [READ_FEED] for name in READERS})


def backwards(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    read_feed = Permission.objects.filter(content_type__app_label="decisions", codename="read_feed")
    for group in Group.objects.filter(name="Platform admins"):
        group.permissions.remove(*read_feed)
    Group.objects.filter(name="Host platforms").delete()


class Migration(migrations.Migration):
    dependencies = [("decisions", "0004_existing_deployments")]

    operations = [migrations.RunPython(forwards, backwards)]
