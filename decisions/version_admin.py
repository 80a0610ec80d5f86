"""The version page: the dossier of one plugin version, its reviews, revisions, decision and deployment."""

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypedDict, cast

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q, QuerySet
from django.forms import BoundField
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from decisions import deployment
from decisions.decision_admin import decide_view
from decisions.deployment_admin import AnyPermAction, asks_for_environment, deployment_action_view, require_visible
from decisions.dossier.views import dossier_url, dossier_urls
from decisions.retro_hunt_admin import RetroHuntFlagInline
from governance.admin_actions import ServiceAction
from governance.admin_base import (
    ReadOnlyInline,
    ScopedAdmin,
    ServiceCreateAdminMixin,
    ServiceCreateForm,
    per_request,
)
from governance.errors import WardenError
from reviews.models import OPEN, Annotation, StageReview
from reviews.selectors import finding_counts, threads_awaiting_author, version_audit_visible_to
from submissions import services
from submissions.code_admin import code_urls
from submissions.models import Organisation, Plugin, PluginVersion, VersionRevision, VersionStatus
from submissions.selectors import (
    plugins_submittable_by,
    versions_visible_to,
)


class _OpenReviews(TypedDict):
    """What ``PluginVersionAdmin.scoped_queryset`` annotates each version with."""

    open_review_total: int


if TYPE_CHECKING:  # django-stubs-ext is a development dependency
    from django_stubs_ext import WithAnnotations

    CountedVersion = WithAnnotations[PluginVersion, _OpenReviews]
else:  # what typing.get_type_hints resolves at run time
    CountedVersion = PluginVersion


class VersionUploadForm(ServiceCreateForm):
    artifact = forms.FileField(help_text="A .whl, .zip or .tar.gz with plugin.toml at its root.")

    class Meta:
        model = PluginVersion
        fields = ["plugin"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["plugin"].queryset = plugins_submittable_by(  # type: ignore[attr-defined]
            user=self.user
        ).select_related("organisation")

    def create(self, data: dict) -> PluginVersion:
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

    def get_queryset(self, request: HttpRequest) -> QuerySet[StageReview]:
        return super().get_queryset(request).select_related("version__plugin", "stage", "assignee", "decided_by")


class VersionRevisionInline(ReadOnlyInline):
    """Every archive the version was reviewed with, newest first; each can be downloaded."""

    model = VersionRevision
    fields = readonly_fields = ("number", "download", "sha256", "size", "created_by", "created_at", "reason")
    ordering = ["-number"]
    show_change_link = False
    verbose_name_plural = "Revisions"

    def get_queryset(self, request: HttpRequest) -> QuerySet[VersionRevision]:
        return super().get_queryset(request).select_related("created_by").defer("files")

    @admin.display(description="Artifact")
    def download(self, obj: VersionRevision) -> SafeString:
        url = reverse("admin:submissions_pluginversion_download", args=[obj.version_id])
        return format_html('<a href="{}?revision={}">{}</a> (download)', url, obj.number, obj.artifact_name)


class ResubmitForm(forms.Form):
    """The author's answer to a request for changes: a reason, perhaps a fixed archive (a
    new revision), and one answer box per open thread addressed to the authors. ``clean``
    calls the service, so a refusal anywhere is shown here and nothing is written."""

    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 4, "cols": 60}))
    artifact = forms.FileField(
        required=False,
        help_text="Optional: the fixed .whl, .zip or .tar.gz (same plugin name and version number).",
    )

    def __init__(
        self, *args: Any, version: PluginVersion, user: User, threads: list[Annotation], **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.version, self.user, self.threads = version, user, threads
        for thread in threads:
            self.fields[f"answer_{thread.pk}"] = forms.CharField(
                required=False,
                label=f"Answer to {thread.author}",
                widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
            )

    def answer_rows(self) -> list[tuple[Annotation, BoundField]]:
        """Each open thread beside its answer box (the body is the reviewer's text: escaped)."""
        return [(thread, self[f"answer_{thread.pk}"]) for thread in self.threads]

    def clean(self) -> dict[str, Any]:
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


def _author(call: Callable[..., PluginVersion]) -> Callable[[PluginVersion, User, str], PluginVersion]:
    return lambda obj, user, reason: call(version=obj, actor=user, reason=reason)


def _plugin(version: PluginVersion) -> Plugin:
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
    inlines = [StageReviewInline, VersionRevisionInline, RetroHuntFlagInline]
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
        # Deploy and Roll back ask for the environment on their own form (decisions/deployment_admin.py).
        ServiceAction(
            "deploy",
            "Deploy",
            asks_for_environment,
            perm=DEPLOY,
            available=lambda obj: obj.status in deployment.DEPLOYABLE,
        ),
        AnyPermAction(
            "roll_back",
            "Roll back",
            asks_for_environment,
            perms=(DEPLOY, DECIDE),
            available=lambda obj: obj.status == VersionStatus.DEPLOYED,
        ),
        ServiceAction("revoke", "Revoke", _author(deployment.version_revoke), reason="required", perm=DECIDE),
    ]

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        for name in ("act_deploy", "act_roll_back"):  # one version at a time: each asks where
            actions.pop(name, None)
        return actions

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                "<path:object_id>/decide/",
                self.admin_site.admin_view(lambda request, object_id: decide_view(self, request, object_id)),
                name="submissions_pluginversion_decide",
            ),
            *code_urls(self),  # diff, code browser, download (submissions/code_admin.py)
            *dossier_urls(self),  # the dossier and the forms it posts (decisions/dossier/)
            *super().get_urls(),
        ]

    def service_action_view(self, request: HttpRequest, object_id: str, action: str) -> HttpResponse:
        if action == "resubmit":
            return self.resubmit_view(request, object_id)
        if action in ("deploy", "roll_back"):
            return deployment_action_view(self, request, require_visible(self, request, object_id), action)
        return super().service_action_view(request, object_id, action)

    def resubmit_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Resubmit as one form: reason, an optional new artifact, answers to open threads."""
        obj = self.get_object(request, object_id)
        if obj is None or not self.has_view_permission(request, obj):
            raise PermissionDenied
        post = request.method == "POST"
        form = ResubmitForm(
            request.POST if post else None,
            request.FILES if post else None,
            version=obj,
            user=cast(User, request.user),  # the admin serves signed-in staff only
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

    def scoped_queryset(self, request: HttpRequest) -> QuerySet[CountedVersion]:
        return versions_visible_to(user=cast(User, request.user)).annotate(
            open_review_total=Count("stage_reviews", filter=Q(stage_reviews__status__in=OPEN))
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return per_request(
            request, "can_submit", lambda: plugins_submittable_by(user=cast(User, request.user)).exists()
        )

    @admin.display(description="Organisation", ordering="plugin__organisation__name")
    def organisation(self, obj: PluginVersion) -> Organisation:
        return obj.plugin.organisation

    @admin.display(description="Open reviews", ordering="open_review_total")
    def open_reviews(self, obj: CountedVersion) -> int:
        return obj.open_review_total

    @admin.display(description="plugin.toml, parsed")
    def manifest_toml(self, obj: PluginVersion) -> SafeString:
        return format_html("<pre>{}</pre>", json.dumps(obj.manifest, indent=2, sort_keys=True))

    def change_view_context_for(self, request: HttpRequest, obj: PluginVersion | None) -> dict[str, Any]:
        if obj is None:
            return {}
        events = version_audit_visible_to(version=obj, user=cast(User, request.user))  # a reviewer: its stages
        findings = render_to_string(
            "admin/warden/finding_counts.html", {"counts": finding_counts(version=obj), "version": obj}
        )
        return {
            "below_inlines": findings + render_to_string("admin/warden/audit_trail.html", {"events": events}),
            "object_tools_links": [
                ("Dossier", dossier_url(obj)),
                ("Code", reverse("admin:submissions_pluginversion_code", args=[obj.pk])),
                ("Diff", reverse("admin:submissions_pluginversion_diff", args=[obj.pk])),
            ],
        }
