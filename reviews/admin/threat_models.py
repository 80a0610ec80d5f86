"""Threat models with their elements and threats."""

from django import forms
from django.contrib import admin
from django_fsm import can_proceed

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


class RowFormSet(forms.BaseInlineFormSet):
    """Refuses, as a form error, deleting what the author may not delete."""

    def clean(self):
        super().clean()
        refusals = [threat_model_services.why_row_stays(form.instance) for form in self.deleted_forms]
        if any(refusals):
            raise forms.ValidationError([why for why in refusals if why])


class ThreatModelRowInline(admin.TabularInline):
    """Rows the author edits while the threat model is a draft or sent back."""

    extra = 0
    formset = RowFormSet

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
    """A threat's status moves by the buttons on its own page (ThreatAdmin), never in a form."""

    model = Threat
    fields = ("title", "stride", "element", "likelihood", "impact", "mitigation", "status", "source")
    readonly_fields = ("status", "source")
    show_change_link = True

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
        """Each row through the services, with its own audit event (the admin's change view
        runs them all in one transaction)."""
        changed = {id(row_form.instance): row_form.changed_data for row_form in formset.forms}
        formset.save(commit=False)
        for row in formset.deleted_objects:
            threat_model_services.threat_model_row_delete(row=row, actor=request.user)
        for row in [*formset.new_objects, *(row for row, _fields in formset.changed_objects)]:
            threat_model_services.threat_model_row_save(row=row, actor=request.user, changed=changed[id(row)])


def _addressable(threat: Threat, transition: str) -> bool:
    return threat.threat_model.status in threat_model_services.EDITABLE and can_proceed(getattr(threat, transition))


@admin.register(Threat)
class ThreatAdmin(ScopedAdmin):
    """One threat of a threat model: the author addresses it (or reopens it) while the model is
    editable; the security reviewer may reopen it while the model is under review."""

    list_display = ["title", "threat_model", "stride", "likelihood", "impact", "status", "source"]
    list_filter = ["status", "stride", "source"]
    list_select_related = ["threat_model__version__plugin"]
    fields = readonly_fields = (
        "threat_model",
        "title",
        "stride",
        "element",
        "likelihood",
        "impact",
        "mitigation",
        "status",
        "source",
    )
    service_actions = [
        ServiceAction(
            "mitigate",
            "Mark mitigated",
            lambda obj, user, reason: threat_model_services.threat_mitigate(threat=obj, actor=user, mitigation=reason),
            reason="optional",  # the mitigation, if the threat does not say it yet
            available=lambda obj: _addressable(obj, "mitigate"),
            done="{obj} is mitigated.",
        ),
        ServiceAction(
            "accept_risk",
            "Accept the risk",
            lambda obj, user, reason: threat_model_services.threat_accept_risk(threat=obj, actor=user, reason=reason),
            reason="required",
            available=lambda obj: _addressable(obj, "accept_risk"),
            done="The risk of {obj} is accepted.",
        ),
        ServiceAction(
            "transfer",
            "Transfer",
            lambda obj, user, reason: threat_model_services.threat_transfer(threat=obj, actor=user, reason=reason),
            reason="required",
            available=lambda obj: _addressable(obj, "transfer"),
            done="{obj} is transferred.",
        ),
        ServiceAction(
            "reopen",
            "Reopen",
            lambda obj, user, reason: threat_model_services.threat_reopen(threat=obj, actor=user, reason=reason),
            reason="optional",  # required of the security reviewer, checked by the service
            done="{obj} is open again.",
        ),
    ]

    def scoped_queryset(self, request):
        visible = versions_visible_to(user=request.user)
        return Threat.objects.filter(threat_model__version__in=visible).select_related("threat_model__version")

    def has_add_permission(self, request):
        return False  # threats are added on their threat model's page
