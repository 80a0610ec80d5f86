"""Create the portal's roles as groups with their model permissions.

Permissions are normally created after all migrations (post_migrate); they are created
here first so that a fresh database gets complete roles in one `migrate`.
"""

from django.db import migrations

from governance.migration_helpers import grant_permissions

ROLE_PERMISSIONS = {
    "Plugin authors": [],
    "Security reviewers": ["governance.view_stage"],
    "Performance reviewers": ["governance.view_stage"],
    "Compliance officers": ["governance.view_stage"],
    "Approval board": [
        "submissions.view_organisation", "submissions.view_plugin", "submissions.view_pluginversion",
        "reviews.view_stagereview", "governance.view_stage",
        "submissions.decide_pluginversion", "governance.view_auditevent",
    ],
    "Platform admins": [
        "submissions.view_organisation", "submissions.view_plugin", "submissions.view_pluginversion",
        "reviews.view_stagereview", "governance.view_stage",
        "submissions.add_organisation", "submissions.change_organisation",
        "submissions.deploy_pluginversion", "reviews.waive_stagereview",
        "governance.add_stage", "governance.change_stage", "governance.view_auditevent",
        "auth.view_user", "auth.view_group",
    ],
}


def create_roles(apps, schema_editor):
    grant_permissions(apps, ROLE_PERMISSIONS)


def remove_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=ROLE_PERMISSIONS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("governance", "0001_initial"),
        ("submissions", "0001_initial"),
        ("reviews", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_roles, remove_roles)]
