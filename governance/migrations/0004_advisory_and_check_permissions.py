"""Platform admins import advisories and see check results; the board sees them too."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GRANTS = {
    "Platform admins": ["reviews.add_advisory", "reviews.view_advisory", "reviews.view_checkrun",
                        "reviews.view_finding", "governance.add_hostplatform", "governance.change_hostplatform",
                        "governance.view_hostplatform", "governance.add_allowedlicence",
                        "governance.change_allowedlicence", "governance.view_allowedlicence"],
    "Approval board": ["reviews.view_advisory", "reviews.view_checkrun", "reviews.view_finding"],
    "Security reviewers": ["reviews.view_advisory"],
}


def grant(apps, schema_editor):
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, perms in GRANTS.items():
        group = Group.objects.get(name=name)
        for perm in perms:
            app_label, codename = perm.split(".")
            group.permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))


class Migration(migrations.Migration):
    dependencies = [
        ("governance", "0003_host_platforms_licences_stage_checks"),
        ("reviews", "0003_requeue_schedule"),
    ]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
