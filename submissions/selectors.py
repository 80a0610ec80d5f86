"""Reads on plugins and versions, always filtered by what the user may see."""

from django.contrib.auth.models import User
from django.db.models import Q, QuerySet
from guardian.shortcuts import get_objects_for_user

from governance import hooks

from .models import Organisation, Plugin, PluginVersion


def organisations_of(*, user: User) -> QuerySet[Organisation]:
    """The organisations ``user`` is a member of (authors act for these)."""
    return Organisation.objects.filter(group__user=user)


def plugins_visible_to(*, user: User) -> QuerySet[Plugin]:
    return get_objects_for_user(user, "submissions.view_plugin", klass=Plugin, accept_global_perms=True)


def plugins_submittable_by(*, user: User) -> QuerySet[Plugin]:
    return get_objects_for_user(user, "submissions.submit_plugin", klass=Plugin, accept_global_perms=False)


def versions_visible_to(*, user: User) -> QuerySet[PluginVersion]:
    """Everything for roles with the global view permission; otherwise the versions of the
    user's organisations' plugins and the versions whose stages the user's groups review
    (the ``versions_visible`` hook, which reviews fills: reviews/apps.py)."""
    if user.has_perm("submissions.view_pluginversion"):
        return PluginVersion.objects.all()
    condition = Q(plugin__in=plugins_visible_to(user=user))
    for version_ids in hooks.fire(hooks.VERSIONS_VISIBLE, user=user):
        condition |= Q(pk__in=version_ids)
    return PluginVersion.objects.filter(condition)


def organisations_visible_to(*, user: User) -> QuerySet[Organisation]:
    """Every organisation for roles with the global view permission; otherwise the user's own."""
    if user.has_perm("submissions.view_organisation"):
        return Organisation.objects.all()
    return organisations_of(user=user)
