"""Platform admins create and revoke API tokens in the admin (*Auth Token*), as the README
says: DRF's token admin is on the proxy model authtoken.TokenProxy, whose permissions no role
held, so nobody but a superuser could open it."""

from django.db import migrations

from governance.migration_helpers import grant_permissions, revoke_permissions

TOKEN_PERMISSIONS = ["authtoken.view_tokenproxy", "authtoken.add_tokenproxy", "authtoken.delete_tokenproxy"]


def forwards(apps, schema_editor):
    grant_permissions(apps, {"Platform admins": TOKEN_PERMISSIONS})


def backwards(apps, schema_editor):
    revoke_permissions(apps, {"Platform admins": TOKEN_PERMISSIONS})


class Migration(migrations.Migration):
    dependencies = [
        ("governance", "0012_reviewers_see_exemptions_by_scope"),
        ("authtoken", "0004_alter_tokenproxy_options"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
