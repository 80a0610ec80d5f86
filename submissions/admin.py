import json

from django import forms
from django.contrib import admin
from django.db.models import Count, Q
from django.template.loader import render_to_string
from django.utils.html import format_html

from governance.admin_actions import ServiceAction
from governance.admin_base import ReadOnlyInline, ScopedAdmin, ServiceCreateAdminMixin, ServiceCreateForm, per_request
from governance.selectors import audit_events_for
from reviews import services as review_services
from reviews.models import OPEN, StageReview
from reviews.selectors import finding_counts

from . import services
from .models import Organisation, Plugin, PluginVersion
from .selectors import organisations_of, plugins_submittable_by, plugins_visible_to, versions_visible_to


class OrganisationForm(ServiceCreateForm):
    class Meta:
        model = Organisation
        fields = ["name", "slug", "contact_email"]

    def create(self, data):
        return services.organisation_create(actor=self.user, **data)


@admin.register(Organisation)
class OrganisationAdmin(ServiceCreateAdminMixin, ScopedAdmin):
    add_form = OrganisationForm
    list_display = ["name", "slug", "contact_email", "created_at"]
    search_fields = ["name", "slug"]
    readonly_fields = ["name", "slug", "contact_email", "members", "created_at"]

    def scoped_queryset(self, request):
        if request.user.has_perm("submissions.view_organisation"):
            return Organisation.objects.all()
        return organisations_of(user=request.user)

    def has_add_permission(self, request):
        return request.user.has_perm("submissions.add_organisation")

    @admin.display(description="Members")
    def members(self, obj):
        return ", ".join(sorted(obj.group.user_set.values_list("username", flat=True))) or "—"


class PluginForm(ServiceCreateForm):
    class Meta:
        model = Plugin
        fields = ["organisation", "name", "category", "description"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["organisation"].queryset = organisations_of(user=self.user)  # type: ignore[attr-defined]

    def create(self, data):
        return services.plugin_create(actor=self.user, **data)


@admin.register(Plugin)
class PluginAdmin(ServiceCreateAdminMixin, ScopedAdmin):
    add_form = PluginForm
    list_display = ["name", "organisation", "category", "version_count", "created_at"]
    list_filter = ["category", ("organisation", admin.RelatedOnlyFieldListFilter)]
    list_select_related = ["organisation"]
    search_fields = ["name", "organisation__name"]
    readonly_fields = ["organisation", "name", "category", "description", "created_at"]

    def scoped_queryset(self, request):
        return plugins_visible_to(user=request.user).annotate(version_total=Count("versions"))

    def has_add_permission(self, request):
        return per_request(request, "is_member", lambda: organisations_of(user=request.user).exists())

    @admin.display(description="Versions", ordering="version_total")
    def version_count(self, obj):
        return obj.version_total


class VersionUploadForm(ServiceCreateForm):
    artifact = forms.FileField(help_text="A .whl, .zip or .tar.gz with plugin.toml at its root.")

    class Meta:
        model = PluginVersion
        fields = ["plugin"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["plugin"].queryset = plugins_submittable_by(  # type: ignore[attr-defined]
            user=self.user
        ).select_related("organisation")

    def create(self, data):
        return services.version_create(plugin=data["plugin"], artifact=data["artifact"], actor=self.user)


class StageReviewInline(ReadOnlyInline):
    model = StageReview
    fields = readonly_fields = (
        "round",
        "stage",
        "status",
        "assignee",
        "started_at",
        "due_at",
        "decided_by",
        "decision_reason",
    )
    ordering = ["-round", "stage__order", "stage__key"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("version__plugin", "stage", "assignee", "decided_by")


def _author(call):
    return lambda obj, user, reason: call(version=obj, actor=user, reason=reason)


def _plugin(version):
    return version.plugin


SUBMIT, DECIDE, DEPLOY = (
    "submissions.submit_plugin",
    "submissions.decide_pluginversion",
    "submissions.deploy_pluginversion",
)


@admin.register(PluginVersion)
class PluginVersionAdmin(ServiceCreateAdminMixin, ScopedAdmin):
    add_form = VersionUploadForm
    show_full_result_count = False
    list_display = ["__str__", "organisation", "status", "review_round", "open_reviews", "submitted_by", "submitted_at"]
    list_filter = [
        "status",
        "plugin__category",
        ("plugin__organisation", admin.RelatedOnlyFieldListFilter),
        "created_at",
    ]
    list_select_related = ["plugin__organisation", "submitted_by"]
    search_fields = ["plugin__name", "version", "sha256"]
    inlines = [StageReviewInline]
    fieldsets = [
        (None, {"fields": ["plugin", "version", "status", "review_round", "submitted_by", "submitted_at"]}),
        ("Decision", {"fields": ["decided_at", "decision_reason"]}),
        ("Artifact", {"fields": ["artifact_name", "sha256", "size", "created_by", "created_at"]}),
        ("Manifest", {"classes": ["collapse"], "fields": ["manifest_toml"]}),
    ]
    readonly_fields = [
        "plugin",
        "version",
        "status",
        "review_round",
        "artifact_name",
        "sha256",
        "size",
        "manifest_toml",
        "created_by",
        "created_at",
        "submitted_by",
        "submitted_at",
        "decided_at",
        "decision_reason",
    ]
    service_actions = [
        ServiceAction(
            "submit",
            "Submit",
            lambda obj, user, reason: services.version_submit(version=obj, actor=user),
            perm=SUBMIT,
            perm_on=_plugin,
        ),
        ServiceAction(
            "resubmit", "Resubmit", _author(services.version_resubmit), reason="required", perm=SUBMIT, perm_on=_plugin
        ),
        ServiceAction(
            "withdraw", "Withdraw", _author(services.version_withdraw), reason="required", perm=SUBMIT, perm_on=_plugin
        ),
        ServiceAction("approve", "Approve", _author(review_services.version_approve), reason="optional", perm=DECIDE),
        ServiceAction("reject", "Reject", _author(review_services.version_reject), reason="required", perm=DECIDE),
        ServiceAction("deploy", "Deploy", _author(services.version_deploy), reason="optional", perm=DEPLOY),
        ServiceAction("roll_back", "Roll back", _author(services.version_roll_back), reason="required", perm=DEPLOY),
        ServiceAction("revoke", "Revoke", _author(services.version_revoke), reason="required", perm=DECIDE),
    ]

    def scoped_queryset(self, request):
        return versions_visible_to(user=request.user).annotate(
            open_review_total=Count("stage_reviews", filter=Q(stage_reviews__status__in=OPEN))
        )

    def has_add_permission(self, request):
        return per_request(request, "can_submit", lambda: plugins_submittable_by(user=request.user).exists())

    @admin.display(description="Organisation", ordering="plugin__organisation__name")
    def organisation(self, obj):
        return obj.plugin.organisation

    @admin.display(description="Open reviews", ordering="open_review_total")
    def open_reviews(self, obj):
        return obj.open_review_total

    @admin.display(description="plugin.toml, parsed")
    def manifest_toml(self, obj):
        return format_html("<pre>{}</pre>", json.dumps(obj.manifest, indent=2, sort_keys=True))

    def change_view_context(self, obj):
        if obj is None:
            return {}
        events = audit_events_for(targets=[obj, *obj.stage_reviews.all()])
        findings = render_to_string(
            "admin/warden/finding_counts.html", {"counts": finding_counts(version=obj), "version": obj}
        )
        return {"below_inlines": findings + render_to_string("admin/warden/audit_trail.html", {"events": events})}
