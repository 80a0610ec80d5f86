"""Reads on plugins and versions, always filtered by what the user may see."""

from django.db.models import Q, QuerySet
from guardian.shortcuts import get_objects_for_user

from .models import Organisation, Plugin, PluginVersion


def organisations_of(*, user) -> QuerySet[Organisation]:
    """The organisations ``user`` is a member of (authors act for these)."""
    return Organisation.objects.filter(group__user=user)


def plugins_visible_to(*, user) -> QuerySet[Plugin]:
    return get_objects_for_user(user, "submissions.view_plugin", klass=Plugin, accept_global_perms=True)


def plugins_submittable_by(*, user) -> QuerySet[Plugin]:
    return get_objects_for_user(user, "submissions.submit_plugin", klass=Plugin, accept_global_perms=False)


def versions_visible_to(*, user) -> QuerySet[PluginVersion]:
    """Everything for roles with the global view permission; otherwise the versions of the
    user's organisations' plugins and the versions whose stages the user's groups review."""
    from reviews.selectors import reviews_assigned_to_groups_of

    if user.has_perm("submissions.view_pluginversion"):
        return PluginVersion.objects.all()
    return PluginVersion.objects.filter(
        Q(plugin__in=plugins_visible_to(user=user))
        | Q(pk__in=reviews_assigned_to_groups_of(user=user).values("version_id"))
    )


def threads_awaiting_author(*, version: PluginVersion) -> QuerySet:
    """Open threads the reviewers addressed to the authors of ``version``: what a
    resubmission may answer."""
    from reviews.models import Annotation

    return (
        Annotation.objects.filter(version=version, parent__isnull=True, to_author=True, resolved_at__isnull=True)
        .select_related("author")
        .order_by("created_at", "pk")
    )


def organisations_visible_to(*, user) -> QuerySet[Organisation]:
    """Every organisation for roles with the global view permission; otherwise the user's own."""
    if user.has_perm("submissions.view_organisation"):
        return Organisation.objects.all()
    return organisations_of(user=user)
