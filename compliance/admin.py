from django import forms
from django.contrib import admin, messages
from django.db.models import Prefetch
from django.http import Http404
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from simple_history.admin import SimpleHistoryAdmin

from governance.admin_actions import ServiceAction
from governance.admin_base import (
    ReadOnlyInline,
    ScopedAdmin,
    ServiceCreateAdminMixin,
    ServiceCreateForm,
    attachment,
    per_request,
    register_visibility,
)
from governance.cel import compile_expression
from governance.errors import WardenError
from reviews.admin import REVIEW, StageReviewAdmin
from submissions.selectors import organisations_of, versions_visible_to

from .evidence import assessment_decide, compliance_sign_off, evidence_decide, evidence_upload
from .models import Checklist, Control, ControlAssessment, Evidence, EvidenceKind, Framework, ReReview
from .rereviews import re_review_complete
from .selectors import assessments_visible_to, evidence_visible_to, re_reviews_visible_to
from .services import framework_in_use, framework_new_version

register_visibility(ControlAssessment, assessments_visible_to)
register_visibility(Evidence, evidence_visible_to)
register_visibility(ReReview, re_reviews_visible_to)


class ControlForm(forms.ModelForm):
    class Meta:
        model = Control
        fields = ["key", "text", "criticality", "guidance", "typical_evidence", "applies_to_data", "expression"]

    def clean_expression(self):
        expression = self.cleaned_data.get("expression", "")
        if expression:
            try:
                compile_expression(expression)
            except WardenError as exc:
                raise forms.ValidationError(exc.detail) from None
        return expression


class ControlInline(admin.StackedInline):
    model = Control
    form = ControlForm
    extra = 0

    def _frozen(self, obj) -> bool:
        return obj is not None and framework_in_use(framework=obj)

    def has_add_permission(self, request, obj=None):
        return not self._frozen(obj) and request.user.has_perm("compliance.add_control")

    def has_change_permission(self, request, obj=None):
        return not self._frozen(obj) and request.user.has_perm("compliance.change_control")

    def has_delete_permission(self, request, obj=None):
        return not self._frozen(obj) and request.user.has_perm("compliance.delete_control")

    def has_view_permission(self, request, obj=None):
        return True


@admin.register(Framework)
class FrameworkAdmin(SimpleHistoryAdmin):
    """Versions nobody's assessment used yet are edited here; a used version is frozen, and
    *New version* copies it for editing. YAML import/export keeps them in version control."""

    list_display = ["key", "version", "name", "imported_at", "in_use"]
    list_filter = ["key"]
    fields = ["key", "version", "name", "description", "imported_at"]
    readonly_fields = ["key", "version", "imported_at"]
    inlines = [ControlInline]
    actions = ["new_version"]

    def has_add_permission(self, request):
        return False  # frameworks start from YAML: manage.py import_framework

    def has_change_permission(self, request, obj=None):
        if obj is not None and framework_in_use(framework=obj):
            return False
        return request.user.has_perm("compliance.change_framework")

    @admin.display(boolean=True, description="In use (frozen)")
    def in_use(self, obj):
        return framework_in_use(framework=obj)

    @admin.action(description="New version (a copy to edit)")
    def new_version(self, request, queryset):
        if not request.user.has_perm("compliance.add_framework"):
            self.message_user(request, "You may not create framework versions.", messages.ERROR)
            return
        copies = [framework_new_version(framework=f) for f in queryset]
        self.message_user(request, f"Created {', '.join(str(c) for c in copies)}.")


@admin.register(Checklist)
class ChecklistAdmin(SimpleHistoryAdmin):
    list_display = ["name", "categories", "re_review_days"]
    filter_horizontal = ["frameworks"]


class ControlAssessmentInline(ReadOnlyInline):
    """On the compliance review's page: every control, its result and what decided it."""

    model = ControlAssessment
    fields = readonly_fields = ("control", "criticality", "result", "status", "inputs", "reason", "evidence")
    show_change_link = True  # the assessment's own page: decide it, see its history

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related("control__framework")
            .prefetch_related(
                Prefetch("control__evidence", queryset=Evidence.objects.order_by("-revision"), to_attr="all_evidence")
            )
        )

    @admin.display(description="Criticality")
    def criticality(self, obj):
        return obj.control.get_criticality_display()

    @admin.display(description="Evidence")
    def evidence(self, obj):
        mine = [e for e in obj.control.all_evidence if e.version_id == obj.stage_review.version_id]
        return (
            format_html_join(
                ", ",
                '<a href="{}">{} r{} ({})</a>',
                (
                    (
                        reverse("admin:compliance_evidence_change", args=[e.pk]),
                        e.get_kind_display(),
                        e.revision,
                        e.get_status_display().lower(),
                    )
                    for e in mine
                ),
            )
            or "—"
        )


class EvidenceUploadForm(ServiceCreateForm):
    upload = forms.FileField(help_text="PDF, PNG, JPEG, text, Markdown or CSV, up to 20 MiB.")
    replaces = forms.ModelChoiceField(
        queryset=Evidence.objects.none(),
        required=False,
        help_text="An earlier upload this one is the next revision of.",
    )

    class Meta:
        model = Evidence
        fields = ["version", "controls", "kind", "description", "expires_on"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        versions = versions_visible_to(user=self.user).filter(plugin__organisation__group__user=self.user)
        self.fields["version"].queryset = versions  # type: ignore[attr-defined]
        self.fields["replaces"].queryset = Evidence.objects.filter(version__in=versions)  # type: ignore[attr-defined]
        self.fields["kind"].choices = EvidenceKind.choices  # type: ignore[attr-defined]

    def create(self, data):
        return evidence_upload(
            version=data["version"],
            controls=list(data["controls"]),
            kind=data["kind"],
            file=data["upload"],
            actor=self.user,
            description=data.get("description", ""),
            expires_on=data.get("expires_on"),
            replaces=data.get("replaces"),
        )


def _decide_evidence(accept: bool):
    return lambda obj, user, reason: evidence_decide(evidence=obj, actor=user, accept=accept, reason=reason)


@admin.register(Evidence)
class EvidenceAdmin(ServiceCreateAdminMixin, ScopedAdmin):
    """Evidence of the versions the user may see; files are downloaded, never shown inline."""

    list_display = ["version", "kind", "revision", "file_name", "status", "uploaded_by", "uploaded_at", "expires_on"]
    list_filter = ["kind", "status"]
    list_select_related = ["version__plugin", "uploaded_by"]
    exclude = ["file"]  # its storage URL is not served: the file is the download link below
    readonly_fields = [
        "version",
        "kind",
        "description",
        "download",
        "sha256",
        "size",
        "revision",
        "previous",
        "expires_on",
        "uploaded_by",
        "uploaded_at",
        "status",
        "decided_by",
        "decided_at",
        "decision_reason",
    ]

    add_form = EvidenceUploadForm
    service_actions = [
        ServiceAction(
            "accept",
            "Accept",
            _decide_evidence(True),
            reason="required",
            available=lambda obj: obj.status == "in_review",
        ),
        ServiceAction(
            "reject",
            "Reject",
            _decide_evidence(False),
            reason="required",
            available=lambda obj: obj.status == "in_review",
        ),
    ]

    def scoped_queryset(self, request):
        return evidence_visible_to(user=request.user)

    def has_add_permission(self, request):  # authors upload: members of an organisation
        return per_request(request, "is_member", lambda: organisations_of(user=request.user).exists())

    def get_urls(self):
        return [
            path(
                "<int:object_id>/download/",
                self.admin_site.admin_view(self.download_view),
                name="compliance_evidence_download",
            ),
            *super().get_urls(),
        ]

    def download_view(self, request, object_id):
        evidence = self.scoped_queryset(request).filter(pk=object_id).first()
        if evidence is None:
            raise Http404("No such evidence.")
        return attachment(evidence.file, evidence.file_name)

    @admin.display(description="File")
    def download(self, obj):
        url = reverse("admin:compliance_evidence_download", args=[obj.pk])
        return format_html('<a href="{}">{}</a> (download)', url, obj.file_name)


@admin.register(ReReview)
class ReReviewAdmin(ScopedAdmin):
    list_display = ["version", "due_on", "status", "reason", "completed_by"]
    list_filter = ["status"]
    list_select_related = ["version__plugin", "completed_by"]
    readonly_fields = ["version", "due_on", "reason", "status", "opened_at", "completed_at", "completed_by", "outcome"]
    ordering = ["due_on"]
    service_actions = [
        ServiceAction(
            "complete",
            "Complete re-review",
            lambda obj, user, reason: re_review_complete(re_review=obj, actor=user, outcome=reason),
            reason="required",
            available=lambda obj: obj.status == "open",
        ),
    ]

    def scoped_queryset(self, request):
        return re_reviews_visible_to(user=request.user)

    def has_add_permission(self, request):
        return False


def _assess(result: str):
    return lambda obj, user, reason: assessment_decide(assessment=obj, actor=user, result=result, reason=reason)


@admin.register(ControlAssessment)
class ControlAssessmentAdmin(ScopedAdmin):
    """One control of one compliance review: its result, the facts or evidence, its history."""

    list_display = ["control", "stage_review", "result", "status", "automatic"]
    list_filter = ["result", "status", "automatic"]
    list_select_related = ["control__framework", "stage_review__version__plugin", "stage_review__stage"]
    readonly_fields = ["stage_review", "control", "result", "status", "automatic", "inputs", "reason"]
    service_actions = [
        ServiceAction(
            result,
            label,
            _assess(result),
            reason="required",
            available=lambda obj: True,
            done=f"Assessed {{obj.control}} as {label.lower()} in {{obj.stage_review}}.",
        )
        for result, label in [
            ("met", "Met"),
            ("partially_met", "Partially met"),
            ("not_met", "Not met"),
            ("not_applicable", "Not applicable"),
        ]
    ]

    def scoped_queryset(self, request):
        return assessments_visible_to(user=request.user)

    def has_add_permission(self, request):
        return False


# The compliance stage's page (reviews/admin.py's StageReviewAdmin): its control assessments, and
# the officer's sign-off in place of a plain pass, offered right after it.
def _sign_off(risk: str):
    return lambda obj, user, reason: compliance_sign_off(review=obj, actor=user, residual_risk=risk, statement=reason)


StageReviewAdmin.inlines.append(ControlAssessmentInline)
_after_pass = next(i for i, a in enumerate(StageReviewAdmin.service_actions) if a.name == "pass") + 1
StageReviewAdmin.service_actions[_after_pass:_after_pass] = [
    ServiceAction(
        f"sign_off_{risk}",
        f"Sign off ({risk} residual risk)",
        _sign_off(risk),
        reason="required",
        available=lambda obj: obj.stage.kind == "compliance" and obj.status == "in_progress",
        perm=REVIEW,
        perm_on=lambda review: review,
    )
    for risk in ("low", "medium", "high")
]
