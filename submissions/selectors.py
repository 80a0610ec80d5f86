"""Reads on plugins and versions, always filtered by what the user may see."""

from django.contrib.auth.models import User
from django.db.models import Q, QuerySet
from guardian.shortcuts import get_objects_for_user

from governance import hooks

from .models import Organisation, Plugin, PluginVersion


def organisations_of(*, user: User) -> QuerySet[Organisation]:
    """The organisations ``user`` is a member of (authors act for these)."""
    return Organisation.objects.filter(group__user=user)


def bound_organisation(user: User) -> int | None:
    """The organisation a request's integration token is bound to, None without one
    (submissions/tokens.py): every read below narrows to it, so a token bound to one vendor
    never reaches another's plugins, whatever its owner may see."""
    return getattr(user, "token_organisation_id", None)


def _bound(queryset: QuerySet, user: User, field: str) -> QuerySet:
    organisation = bound_organisation(user)
    return queryset if organisation is None else queryset.filter(**{field: organisation})


def plugins_visible_to(*, user: User) -> QuerySet[Plugin]:
    plugins = get_objects_for_user(user, "submissions.view_plugin", klass=Plugin, accept_global_perms=True)
    return _bound(plugins, user, "organisation_id")


def plugins_submittable_by(*, user: User) -> QuerySet[Plugin]:
    plugins = get_objects_for_user(user, "submissions.submit_plugin", klass=Plugin, accept_global_perms=False)
    return _bound(plugins, user, "organisation_id")


def versions_visible_to(*, user: User) -> QuerySet[PluginVersion]:
    """Everything for roles with the global view permission; otherwise the versions of the
    user's organisations' plugins and the versions whose stages the user's groups review
    (the ``versions_visible`` hook, which reviews fills: reviews/apps.py)."""
    if user.has_perm("submissions.view_pluginversion"):
        return _bound(PluginVersion.objects.all(), user, "plugin__organisation_id")
    condition = Q(plugin__in=plugins_visible_to(user=user))
    for version_ids in hooks.fire(hooks.VERSIONS_VISIBLE, user=user):
        condition |= Q(pk__in=version_ids)
    return _bound(PluginVersion.objects.filter(condition), user, "plugin__organisation_id")


def organisations_visible_to(*, user: User) -> QuerySet[Organisation]:
    """Every organisation for roles with the global view permission; otherwise the user's own."""
    if user.has_perm("submissions.view_organisation"):
        return _bound(Organisation.objects.all(), user, "pk")
    return _bound(organisations_of(user=user), user, "pk")
