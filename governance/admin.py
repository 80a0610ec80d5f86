from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from .admin_base import ReadOnlyAdmin
from .models import AllowedLicence, AuditEvent, HostPlatform, Stage
from .services import stage_save


@admin.register(Stage)
class StageAdmin(SimpleHistoryAdmin):
    list_display = [
        "order",
        "key",
        "name",
        "kind",
        "owner_group",
        "escalation_group",
        "sla_hours",
        "blocking",
        "active",
    ]
    list_display_links = ["key", "name"]
    list_filter = ["kind", "blocking", "active"]
    list_select_related = ["owner_group", "escalation_group"]
    ordering = ["order", "key"]

    def has_delete_permission(self, request, obj=None):
        return False  # stages with reviews are history; deactivate instead

    def save_model(self, request, obj, form, change):
        stage_save(stage=obj, actor=request.user, changed=form.changed_data)


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = [
        "seq",
        "created_at",
        "actor_username",
        "action",
        "object_repr",
        "from_state",
        "to_state",
        "request_id",
    ]
    list_filter = ["action", "object_type"]
    search_fields = ["object_repr", "actor_username", "request_id", "reason"]
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in AuditEvent._meta.fields]


@admin.register(HostPlatform)
class HostPlatformAdmin(SimpleHistoryAdmin):
    list_display = ["name", "api_version", "is_default", "resource_limits"]
    list_editable = ["is_default"]


@admin.register(AllowedLicence)
class AllowedLicenceAdmin(SimpleHistoryAdmin):
    list_display = ["spdx_id", "name"]
    search_fields = ["spdx_id", "name"]
