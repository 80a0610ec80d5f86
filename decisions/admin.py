"""Admin for rubrics (edited as YAML, versioned, with a diff and a what-if view), policies
(read-only: they come from files), ratings, policy evaluations and exemptions."""

from collections.abc import Callable
from decimal import Decimal
from typing import Any, cast

import yaml
from django import forms
from django.contrib import admin, messages
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.forms.formsets import BaseFormSet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe
from simple_history.admin import SimpleHistoryAdmin

from governance.admin_actions import ServiceAction
from governance.admin_base import (
    ReadOnlyAdmin,
    ScopedAdmin,
    ServiceCreateAdminMixin,
    ServiceCreateForm,
    register_visibility,
    valid_pk,
)
from governance.errors import ValidationFailed, WardenError
from governance.text import yaml_load
from reviews.selectors import findings_visible_to
from submissions.selectors import plugins_visible_to, versions_visible_to

from .decision_admin import rating_bars
from .exemptions import exemption_approve, exemption_reject, exemption_request, exemption_revoke
from .models import Decision, Exemption, ExemptionStatus, Policy, PolicyEvaluation, RiskRating, RiskRubric
from .rubric import rubric_diff, validated_rubric
from .rubric_versions import rubric_document, rubric_in_use, rubric_previous, rubric_revise, rubric_what_if
from .selectors import (
    decisions_visible_to,
    evaluations_visible_to,
    exemptions_visible_to,
    ratings_visible_to,
)
from .services import version_reassess

register_visibility(RiskRating, ratings_visible_to)
register_visibility(PolicyEvaluation, evaluations_visible_to)
register_visibility(Exemption, exemptions_visible_to)
register_visibility(Decision, decisions_visible_to)


def rubric_yaml(document: dict) -> str:
    """The rubric as people edit it: plain numbers, sorted keys."""

    def plain(value: object) -> object:
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, str) and value.replace(".", "", 1).lstrip("-").isdigit():
            number = Decimal(value)
            return int(number) if number == number.to_integral_value() else float(number)
        return value

    return yaml.safe_dump(plain(document), sort_keys=True, allow_unicode=True)


class RubricDocumentField(forms.CharField):
    widget = forms.Textarea(attrs={"rows": 30, "cols": 90, "class": "warden-document"})

    def clean(self, value: Any) -> dict:
        value = super().clean(value)
        try:
            return validated_rubric(yaml_load(value))
        except yaml.YAMLError as exc:
            raise forms.ValidationError(f"Not valid YAML: {exc}") from None
        except ValidationFailed as exc:
            raise forms.ValidationError([f"{e['field']}: {e['message']}" for e in exc.errors] or exc.detail) from None


class RubricForm(forms.ModelForm):
    document = RubricDocumentField(
        help_text="factors: {key: {weight, cap, mitigation}}, bands: {medium, high, critical}"
    )
    reason = forms.CharField(help_text="Why (required; recorded in the audit log).")

    class Meta:
        model = RiskRubric
        fields = ["name", "description"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["document"].initial = rubric_yaml(rubric_document(self.instance))


class WhatIfForm(forms.Form):
    document = RubricDocumentField()


@admin.register(RiskRubric)
class RiskRubricAdmin(SimpleHistoryAdmin):
    """Saving a used version creates the next one; the page shows what changed since the previous."""

    form = RubricForm
    change_form_template = "admin/warden/rubric_change_form.html"
    list_display = ["key", "version", "name", "created_at", "created_by", "in_use"]
    list_filter = ["key"]
    readonly_fields = ["key", "version", "created_by", "created_at", "document_text", "changes_from_previous"]

    def get_fields(self, request: HttpRequest, obj: RiskRubric | None = None) -> list[str]:
        if self.has_change_permission(request, obj):
            return ["key", "version", "name", "description", "document", "reason", "changes_from_previous"]
        return ["key", "version", "name", "description", "document_text", "changes_from_previous"]

    @admin.display(description="Factors and bands")
    def document_text(self, obj: RiskRubric) -> SafeString:
        return format_html("<pre>{}</pre>", rubric_yaml(rubric_document(obj)))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # the default is installed on first use; later versions come from editing

    def has_delete_permission(self, request: HttpRequest, obj: RiskRubric | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: RiskRubric | None = None) -> bool:
        return request.user.has_perm("decisions.change_riskrubric")

    @admin.display(boolean=True, description="In use (frozen)")
    def in_use(self, obj: RiskRubric) -> bool:
        return rubric_in_use(rubric=obj)

    @admin.display(description="Changes from the previous version")
    def changes_from_previous(self, obj: RiskRubric) -> str:
        previous = rubric_previous(rubric=obj)
        if previous is None:
            return "The first version."
        changes = rubric_diff(rubric_document(previous), rubric_document(obj))
        return render_to_string("admin/warden/rubric_diff.html", {"changes": changes})

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        rubric = self.get_object(request, valid_pk(object_id))
        context = {**(extra_context or {})}
        if rubric is not None and rubric_in_use(rubric=rubric):
            latest = RiskRubric.objects.filter(key=rubric.key).order_by("-version").first()
            context.update(in_use=True, next_version=(latest.version if latest else rubric.version) + 1)
        return super().change_view(request, object_id, form_url, context)

    def save_model(self, request: HttpRequest, obj: RiskRubric, form: RubricForm, change: bool) -> None:
        try:
            # attr-defined: HttpRequest declares no such attribute; it takes the saved rubric to response_change
            request._saved_rubric = rubric_revise(  # type: ignore[attr-defined]
                rubric=RiskRubric(pk=obj.pk),
                actor=cast(User, request.user),  # the admin serves signed-in staff only
                document=form.cleaned_data["document"],
                name=form.cleaned_data["name"],
                description=form.cleaned_data.get("description", ""),
                reason=form.cleaned_data["reason"],
            )
        except WardenError as exc:
            request._saved_rubric = None  # type: ignore[attr-defined]
            self.message_user(request, exc.detail, messages.ERROR)

    def save_related(self, request: HttpRequest, form: RubricForm, formsets: list[BaseFormSet], change: bool) -> None:
        pass

    def log_change(self, request: HttpRequest, obj: RiskRubric, message: str | list[dict[str, Any]]) -> None:
        pass  # the service wrote the audit event (and history) for what really happened

    def response_change(self, request: HttpRequest, obj: RiskRubric) -> HttpResponseRedirect:
        saved = getattr(request, "_saved_rubric", None)
        if saved is not None and saved.pk != obj.pk:
            self.message_user(request, f"{obj} is in use, so the change was saved as {saved}.", messages.SUCCESS)
        elif saved is not None:
            self.message_user(request, f"{saved} saved.", messages.SUCCESS)
        target = saved or obj
        return HttpResponseRedirect(reverse("admin:decisions_riskrubric_change", args=[target.pk]))

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                "<path:object_id>/what-if/",
                self.admin_site.admin_view(self.what_if_view),
                name="decisions_riskrubric_what_if",
            ),
            *super().get_urls(),
        ]

    def what_if_view(self, request: HttpRequest, object_id: str) -> TemplateResponse:
        # It lists every current version's rating, whoever's plugin: for who tunes the rubric only.
        if not self.has_change_permission(request):
            raise PermissionDenied
        rubric = self.get_object(request, valid_pk(object_id))
        if rubric is None:
            raise Http404("No such rubric.")
        form = WhatIfForm(request.POST or None, initial={"document": rubric_yaml(rubric_document(rubric))})
        rows = changes = None
        if request.method == "POST" and form.is_valid():
            rows = rubric_what_if(document=form.cleaned_data["document"])
            changes = rubric_diff(rubric_document(rubric), form.cleaned_data["document"])
        context = {
            **self.admin_site.each_context(request),
            "title": f"What if: {rubric}",
            "opts": self.opts,
            "rubric": rubric,
            "form": form,
            "rows": rows,
            "changes": changes,
        }
        return TemplateResponse(request, "admin/warden/rubric_what_if.html", context)


@admin.register(Policy)
class PolicyAdmin(ReadOnlyAdmin, SimpleHistoryAdmin):
    """Policies come from the files in ``policies/`` (manage.py sync_policies); here they are read."""

    list_display = ["key", "version", "title", "severity", "mode", "is_current", "source", "created_at"]
    list_filter = ["is_current", "mode", "severity"]
    search_fields = ["key", "title", "expression"]
    readonly_fields = [
        "key",
        "version",
        "title",
        "description",
        "severity",
        "mode",
        "message",
        "expression",
        "source",
        "content_digest",
        "is_current",
        "retired_at",
        "created_at",
        "versions",
    ]

    def has_view_permission(self, request: HttpRequest, obj: Policy | None = None) -> bool:
        return request.user.is_active and request.user.is_staff

    has_module_permission = has_view_permission

    @admin.display(description="All versions")
    def versions(self, obj: Policy) -> SafeString:
        rows = Policy.objects.filter(key=obj.key).order_by("-version")
        return format_html_join(
            "",
            '<div><a href="{}">v{}</a> {} ({}){}</div>',
            (
                (
                    reverse("admin:decisions_policy_change", args=[p.pk]),
                    p.version,
                    p.mode,
                    p.created_at.strftime("%Y-%m-%d"),
                    " current" if p.is_current else "",
                )
                for p in rows
            ),
        )


@admin.register(RiskRating)
class RiskRatingAdmin(ScopedAdmin):
    list_display = ["version", "total", "band", "rubric", "trigger", "created_at"]
    list_filter = ["band", "trigger", "rubric"]
    list_select_related = ["version__plugin", "rubric"]
    readonly_fields = ("version", "rubric", "total", "band", "trigger", "digest", "created_by", "created_at", "chart")
    fields = readonly_fields
    service_actions = [
        ServiceAction(
            "reassess",
            "Rate and evaluate again",
            lambda obj, user, reason: version_reassess(version=obj.version, actor=user),
            available=lambda obj: True,
        ),
    ]

    def scoped_queryset(self, request: HttpRequest) -> QuerySet[RiskRating]:
        return ratings_visible_to(user=cast(User, request.user))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description="Breakdown")
    def chart(self, obj: RiskRating) -> SafeString:
        return render_to_string(
            "admin/warden/risk_rating.html", {"rating": obj, "bars": rating_bars(obj), "evaluation": None}
        )


@admin.register(PolicyEvaluation)
class PolicyEvaluationAdmin(ScopedAdmin):
    list_display = ["version", "passed", "trigger", "created_at", "created_by"]
    list_filter = ["passed", "trigger"]
    list_select_related = ["version__plugin", "created_by"]
    readonly_fields = ("version", "rating", "passed", "trigger", "created_by", "created_at", "outcomes")
    fields = readonly_fields

    def scoped_queryset(self, request: HttpRequest) -> QuerySet[PolicyEvaluation]:
        return evaluations_visible_to(user=cast(User, request.user))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description="Policies")
    def outcomes(self, obj: PolicyEvaluation) -> SafeString:
        return render_to_string("admin/warden/policy_results.html", {"results": obj.results})


@admin.register(Decision)
class DecisionAdmin(ScopedAdmin):
    """Every decision with the exact rating and policy evaluation it was taken on."""

    list_display = ["version", "action", "actor", "rating", "created_at"]
    list_filter = ["action"]
    list_select_related = ["version__plugin", "actor", "rating__rubric"]
    readonly_fields = (
        "version",
        "action",
        "actor",
        "reason",
        "rating",
        "rating_digest",
        "evaluation",
        "evaluation_digest",
        "created_at",
    )
    fields = readonly_fields

    def scoped_queryset(self, request: HttpRequest) -> QuerySet[Decision]:
        return decisions_visible_to(user=cast(User, request.user))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


class ExemptionRequestForm(ServiceCreateForm):
    policy_key = forms.ChoiceField(required=False, label="Policy", help_text="Or a finding below.")
    finding: forms.ModelChoiceField = forms.ModelChoiceField(
        queryset=None, required=False, widget=forms.TextInput, help_text="The finding's id (or a policy above)."
    )
    controls = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}), required=False, label="Compensating controls", help_text="One a line."
    )

    class Meta:
        model = Exemption
        fields = ["plugin", "scope", "version", "justification", "expires_at"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["plugin"].queryset = plugins_visible_to(user=self.user)  # type: ignore[attr-defined]
        self.fields["version"].queryset = versions_visible_to(user=self.user)  # type: ignore[attr-defined]
        self.fields["finding"].queryset = findings_visible_to(user=self.user)  # type: ignore[attr-defined]
        keys = Policy.objects.filter(is_current=True).order_by("key").values_list("key", flat=True)
        self.fields["policy_key"].choices = [("", "—"), *((k, k) for k in keys)]  # type: ignore[attr-defined]

    def create(self, data: dict) -> Exemption:
        return exemption_request(
            actor=self.user,
            plugin=data["plugin"],
            scope=data["scope"],
            version=data.get("version"),
            policy_key=data.get("policy_key", ""),
            finding=data.get("finding"),
            justification=data["justification"],
            compensating_controls=data.get("controls", ""),
            expires_at=data["expires_at"],
        )


# action, label, service, reason, the states it applies to
BOARD_DECISIONS: list[tuple[str, str, Callable[..., Exemption], str, list[str]]] = [
    ("approve", "Approve", exemption_approve, "optional", [ExemptionStatus.REQUESTED]),
    ("reject", "Reject", exemption_reject, "required", [ExemptionStatus.REQUESTED]),
    ("revoke", "Revoke", exemption_revoke, "required", [ExemptionStatus.REQUESTED, ExemptionStatus.APPROVED]),
]


def _decide(call: Callable[..., Exemption]) -> Callable[[Exemption, User, str], Exemption]:
    return lambda obj, user, reason: call(exemption=obj, actor=user, reason=reason)


@admin.register(Exemption)
class ExemptionAdmin(ServiceCreateAdminMixin, ScopedAdmin):
    """Requests, decisions and expiry of exemptions; the board approves, never the requester."""

    add_form = ExemptionRequestForm
    list_display = ["__str__", "status", "scope", "requested_by", "approved_by", "expires_at"]
    list_filter = ["status", "scope"]
    list_select_related = ["plugin__organisation", "version__plugin", "requested_by", "approved_by"]
    readonly_fields = [
        "plugin",
        "scope",
        "version",
        "policy_key",
        "finding_fingerprint",
        "finding_title",
        "justification",
        "controls_list",
        "status",
        "requested_by",
        "requested_at",
        "approved_by",
        "decided_at",
        "decision_reason",
        "expires_at",
        "warned_at",
    ]
    service_actions = [
        ServiceAction(name, label, _decide(call), reason=reason, available=lambda obj, s=states: obj.status in s)
        for name, label, call, reason, states in BOARD_DECISIONS
    ]

    def scoped_queryset(self, request: HttpRequest) -> QuerySet[Exemption]:
        return exemptions_visible_to(user=cast(User, request.user))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return request.user.is_active and request.user.is_staff

    @admin.display(description="Compensating controls")
    def controls_list(self, obj: Exemption) -> SafeString:
        return format_html_join("", "<div>{}</div>", ((c,) for c in obj.compensating_controls)) or mark_safe("—")


from . import deployment_admin, retro_hunt_admin, version_admin  # noqa: E402, F401 - environments, deployments, flags, the version page
