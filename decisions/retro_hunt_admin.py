"""The retro-hunt flags: what a policy or advisory change found in approved versions. Read
only; a security reviewer resolves a flag with a reason, the board revokes from the version page."""

from typing import cast

from django.contrib import admin
from django.contrib.auth.models import User
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

from governance.admin_actions import ServiceAction
from governance.admin_base import ReadOnlyInline, ScopedAdmin, register_visibility

from .models import FlagStatus, RetroHuntFlag
from .retro_hunt import RESOLVE, retro_flag_resolve
from .selectors import retro_flags_visible_to

register_visibility(RetroHuntFlag, retro_flags_visible_to)


@admin.register(RetroHuntFlag)
class RetroHuntFlagAdmin(ScopedAdmin):
    list_display = ["policy", "version_link", "severity", "status", "due", "proposes_revocation", "opened_at"]
    list_display_links = ["policy"]
    list_filter = ["status", "severity", "proposes_revocation"]
    list_select_related = ["version__plugin"]
    search_fields = ["version__plugin__name", "version__version", "policy_key"]
    fields = readonly_fields = (
        "version_link",
        "policy",
        "severity",
        "message",
        "trigger",
        "status",
        "due",
        "proposes_revocation",
        "opened_at",
        "escalated_at",
        "closed_by",
        "closed_at",
        "closing_reason",
    )
    service_actions = [
        ServiceAction(
            "resolve",
            "Resolve",
            lambda obj, user, reason: retro_flag_resolve(flag=obj, actor=user, reason=reason),
            reason="required",
            perm=RESOLVE,
            done="Resolved {obj}.",
        )
    ]

    def scoped_queryset(self, request: HttpRequest) -> QuerySet[RetroHuntFlag]:
        return retro_flags_visible_to(user=cast(User, request.user))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description="Version", ordering="version")
    def version_link(self, obj: RetroHuntFlag) -> SafeString:
        url = reverse("admin:submissions_pluginversion_change", args=[obj.version_id])
        return format_html('<a href="{}">{}</a> ({})', url, obj.version, obj.version.get_status_display())

    @admin.display(description="Policy", ordering="policy_key")
    def policy(self, obj: RetroHuntFlag) -> str:
        return f"{obj.policy_key} v{obj.policy_version}"

    @admin.display(description="Due", ordering="due_on")
    def due(self, obj: RetroHuntFlag) -> SafeString:
        if obj.status == FlagStatus.OPEN and obj.due_on < timezone.localdate():
            return format_html("<strong>{} (overdue)</strong>", obj.due_on)
        return format_html("{}", obj.due_on)


class RetroHuntFlagInline(ReadOnlyInline):
    """On the version page: what was found after its approval."""

    model = RetroHuntFlag
    fields = readonly_fields = ("policy", "severity", "status", "due", "proposes_revocation", "message", "trigger")
    show_change_link = True
    verbose_name_plural = "Found after approval (retro-hunt)"

    policy = RetroHuntFlagAdmin.policy
    due = RetroHuntFlagAdmin.due
