"""The version page: the dossier of one plugin version, its reviews, revisions, decision and deployment."""

import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.http import Http404, HttpResponseRedirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from decisions import deployment
from decisions.decision_admin import decide_view
from governance.admin_actions import ServiceAction
from governance.admin_base import (
    ReadOnlyInline,
    ScopedAdmin,
    ServiceCreateAdminMixin,
    ServiceCreateForm,
    attachment,
    per_request,
    visible_only,
)
from governance.errors import WardenError
from governance.selectors import audit_events_for
from reviews.models import OPEN, StageReview
from reviews.selectors import finding_counts, threads_awaiting_author
from submissions import services
from submissions.models import PluginVersion, VersionRevision
from submissions.selectors import (
    plugins_submittable_by,
    versions_visible_to,
)


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


class VersionRevisionInline(ReadOnlyInline):
    """Every archive the version was reviewed with, newest first; each can be downloaded."""

    model = VersionRevision
    fields = readonly_fields = ("number", "download", "sha256", "size", "created_by", "created_at", "reason")
    ordering = ["-number"]
    show_change_link = False
    verbose_name_plural = "Revisions"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("created_by")

    @admin.display(description="Artifact")
    def download(self, obj):
        url = reverse("admin:submissions_pluginversion_revision", args=[obj.version_id, obj.number])
        return format_html('<a href="{}">{}</a> (download)', url, obj.artifact_name)


class ResubmitForm(forms.Form):
    """The author's answer to a request for changes: a reason, perhaps a fixed archive (a
    new revision), and one answer box per open thread addressed to the authors. ``clean``
    calls the service, so a refusal anywhere is shown here and nothing is written."""

    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 4, "cols": 60}))
    artifact = forms.FileField(
        required=False,
        help_text="Optional: the fixed .whl, .zip or .tar.gz (same plugin name and version number).",
    )

    def __init__(self, *args, version, user, threads, **kwargs):
        super().__init__(*args, **kwargs)
        self.version, self.user, self.threads = version, user, threads
        for thread in threads:
            self.fields[f"answer_{thread.pk}"] = forms.CharField(
                required=False,
                label=f"Answer to {thread.author}",
                widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
            )

    def answer_rows(self):
        """Each open thread beside its answer box (the body is the reviewer's text: escaped)."""
        return [(thread, self[f"answer_{thread.pk}"]) for thread in self.threads]

    def clean(self):
        super().clean()
        data = self.cleaned_data
        if self.errors:
            return data
        answers = {t.pk: data[f"answer_{t.pk}"] for t in self.threads if data.get(f"answer_{t.pk}", "").strip()}
        try:
            services.version_resubmit(
                version=self.version,
                actor=self.user,
                reason=data["reason"],
                artifact=data.get("artifact"),
                answers=answers,
            )
        except WardenError as exc:
            for error in exc.errors or [{"message": exc.detail}]:
                name = _resubmit_field(error.get("field", ""))
                self.add_error(name, error["message"] if name else f"{error.get('field', '')}: {error['message']}")
            if exc.errors:
                self.add_error(None, exc.detail)
        return data


def _resubmit_field(service_field: str) -> str | None:
    """The form field a service error belongs to (None: the form as a whole)."""
    if service_field in ("reason", "artifact"):
        return service_field
    if service_field.startswith("answers[") and service_field.endswith("]"):
        return f"answer_{service_field[8:-1]}"
    return None


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
    inlines = [StageReviewInline, VersionRevisionInline]
    fieldsets = [
        (None, {"fields": ["plugin", "version", "status", "review_round", "submitted_by", "submitted_at"]}),
        ("Decision", {"fields": ["decided_at", "decision_reason"]}),
        ("Artifact", {"fields": ["revision", "artifact_name", "sha256", "size", "created_by", "created_at"]}),
        ("Manifest", {"classes": ["collapse"], "fields": ["manifest_toml"]}),
    ]
    readonly_fields = [
        "plugin",
        "version",
        "status",
        "review_round",
        "revision",
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
        # Approve and reject are the decision form beside the rating (decisions/decision_admin.py).
        ServiceAction("deploy", "Deploy", _author(deployment.version_deploy), reason="optional", perm=DEPLOY),
        ServiceAction("roll_back", "Roll back", _author(deployment.version_roll_back), reason="required", perm=DEPLOY),
        ServiceAction("revoke", "Revoke", _author(deployment.version_revoke), reason="required", perm=DECIDE),
    ]

    def get_urls(self):
        return [
            path(
                "<int:object_id>/revisions/<int:number>/download/",
                self.admin_site.admin_view(self.revision_download_view),
                name="submissions_pluginversion_revision",
            ),
            path(
                "<path:object_id>/decide/",
                self.admin_site.admin_view(lambda request, object_id: decide_view(self, request, object_id)),
                name="submissions_pluginversion_decide",
            ),
            *super().get_urls(),
        ]

    def service_action_view(self, request, object_id, action):
        if action == "resubmit":
            return self.resubmit_view(request, object_id)
        return super().service_action_view(request, object_id, action)

    def resubmit_view(self, request, object_id):
        """Resubmit as one form: reason, an optional new artifact, answers to open threads."""
        obj = self.get_object(request, object_id)
        if obj is None or not self.has_view_permission(request, obj):
            raise PermissionDenied
        post = request.method == "POST"
        form = ResubmitForm(
            request.POST if post else None,
            request.FILES if post else None,
            version=obj,
            user=request.user,
            threads=list(threads_awaiting_author(version=obj)),
        )
        if post and form.is_valid():
            self.message_user(request, f"Resubmit: done for {obj}.", messages.SUCCESS)
            return HttpResponseRedirect(reverse("admin:submissions_pluginversion_change", args=[obj.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": f"Resubmit {obj}",
            "opts": self.opts,
            "original": obj,
            "form": form,
        }
        return TemplateResponse(request, "admin/submissions/pluginversion/resubmit.html", context)

    def revision_download_view(self, request, object_id, number):
        revision = VersionRevision.objects.filter(
            version__in=self.scoped_queryset(request), version_id=object_id, number=number
        ).first()
        if revision is None:
            raise Http404("No such revision.")
        return attachment(revision.artifact, revision.artifact_name)

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

    def change_view_context_for(self, request, obj):
        if obj is None:
            return {}
        reviews = visible_only(obj.stage_reviews.all(), request.user)  # a reviewer: only its stages
        events = audit_events_for(targets=[obj, *reviews])
        findings = render_to_string(
            "admin/warden/finding_counts.html", {"counts": finding_counts(version=obj), "version": obj}
        )
        return {"below_inlines": findings + render_to_string("admin/warden/audit_trail.html", {"events": events})}
