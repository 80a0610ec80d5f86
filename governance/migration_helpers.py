"""Helpers for data migrations. They only use the historical ``apps`` they are given, so
old migrations keep working as the models change."""

from django.contrib.auth.management import create_permissions


def grant_permissions(apps, grants: dict[str, list[str]]) -> None:
    """Give each group (created if missing) the listed ``app_label.codename`` permissions.

    Permissions normally appear after all migrations (post_migrate); they are created here
    first so that a fresh database gets complete roles in one ``migrate``.
    """
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, verbosity=0, apps=apps)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, perms in grants.items():
        group, _ = Group.objects.get_or_create(name=name)
        for perm in perms:
            app_label, codename = perm.split(".")
            group.permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))


def ensure_schedules(apps, schedules: dict[str, tuple[str, int]]) -> None:
    """django-q2 schedules by name: ``{name: (dotted function, every N minutes)}``."""
    Schedule = apps.get_model("django_q", "Schedule")
    for name, (func, minutes) in schedules.items():
        Schedule.objects.get_or_create(name=name, defaults={"func": func, "schedule_type": "I", "minutes": minutes})


def revoke_permissions(apps, grants: dict[str, list[str]]) -> None:
    """Take the listed ``app_label.codename`` permissions back from each group: the reverse
    of ``grant_permissions``."""
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, perms in grants.items():
        for group in Group.objects.filter(name=name):
            for perm in perms:
                app_label, codename = perm.split(".")
                group.permissions.remove(
                    *Permission.objects.filter(content_type__app_label=app_label, codename=codename)
                )
