"""Threat models with their elements and threats."""

from django.contrib import admin

from governance.admin_actions import ServiceAction
from governance.admin_base import (
    ScopedAdmin,
    valid_pk,
)
from submissions.selectors import versions_visible_to

from .. import threat_model as threat_model_services
from ..models import (
    Threat,
    ThreatModel,
    ThreatModelElement,
)


class ThreatModelRowInline(admin.TabularInline):
    """Rows the author edits while the threat model is a draft or sent back."""

    extra = 0

    def has_add_permission(self, request, obj=None):
        return _editable(request, obj)

    def has_change_permission(self, request, obj=None):
        return _editable(request, obj)

    def has_delete_permission(self, request, obj=None):
        return _editable(request, obj)

    def has_view_permission(self, request, obj=None):
        return True


def _editable(request, threat_model) -> bool:
    return (
        threat_model is not None
        and threat_model.status in threat_model_services.EDITABLE
        and threat_model_services.can_author(actor=request.user, version=threat_model.version)
    )


class ThreatModelElementInline(ThreatModelRowInline):
    model = ThreatModelElement
    fields = ("kind", "name", "description", "source")
    readonly_fields = ("source",)


class ThreatInline(ThreatModelRowInline):
    model = Threat
    fields = ("title", "stride", "element", "likelihood", "impact", "mitigation", "status", "source")
    readonly_fields = ("source",)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "element":
            parent = request.resolver_match.kwargs.get("object_id")
            kwargs["queryset"] = ThreatModelElement.objects.filter(threat_model_id=int(valid_pk(parent or "0")))
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


@admin.register(ThreatModel)
class ThreatModelAdmin(ScopedAdmin):
    """The author fills it in (prefilled from plugin.toml and the sandbox); the security reviewer
    accepts it or sends it back."""

    list_display = ["version", "status", "reviewed_by", "reviewed_at"]
    list_filter = ["status"]
    list_select_related = ["version__plugin", "reviewed_by"]
    fields = ["version", "status", "summary", "reviewed_by", "reviewed_at", "review_note"]
    readonly_fields = ["version", "status", "reviewed_by", "reviewed_at", "review_note"]
    inlines = [ThreatModelElementInline, ThreatInline]
    service_actions = [
        ServiceAction(
            "prefill",
            "Prefill from plugin.toml and the sandbox",
            lambda obj, user, reason: threat_model_services.threat_model_prefill(version=obj.version, actor=user),
            available=lambda obj: obj.status in threat_model_services.EDITABLE,
        ),
        ServiceAction(
            "submit",
            "Submit for review",
            lambda obj, user, reason: threat_model_services.threat_model_submit(threat_model=obj, actor=user),
        ),
        ServiceAction(
            "accept",
            "Accept",
            lambda obj, user, reason: threat_model_services.threat_model_decide(
                threat_model=obj, actor=user, accept=True, reason=reason
            ),
            reason="optional",
        ),
        ServiceAction(
            "request_changes",
            "Request changes",
            lambda obj, user, reason: threat_model_services.threat_model_decide(
                threat_model=obj, actor=user, accept=False, reason=reason
            ),
            reason="required",
        ),
    ]

    def scoped_queryset(self, request):
        return ThreatModel.objects.filter(version__in=versions_visible_to(user=request.user))

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return _editable(request, obj)

    def save_model(self, request, obj, form, change):
        threat_model_services.threat_model_edit(threat_model=obj, actor=request.user, changed=form.changed_data)

    def save_formset(self, request, form, formset, change):
        threat_model_services.require_editable(threat_model=form.instance, actor=request.user)
        for row in formset.save(commit=False):
            row._history_user = request.user
            row.save()
        for row in formset.deleted_objects:
            row._history_user = request.user
            row.delete()
