from datetime import timedelta
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import F
from django.http import Http404
from django.template.loader import render_to_string
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django_fsm import can_proceed
from simple_history.admin import SimpleHistoryAdmin

from governance.admin_actions import ServiceAction
from governance.admin_base import (
    ReadOnlyAdmin,
    ReadOnlyInline,
    ScopedAdmin,
    ServiceCreateAdminMixin,
    ServiceCreateForm,
    attachment,
    register_visibility,
    valid_pk,
)
from governance.errors import WardenError
from governance.selectors import audit_events_for
from submissions.selectors import versions_visible_to

from . import collaboration, services
from . import threat_model as threat_model_services
from .kpis import KPIS, describe_change
from .models import (
    OPEN,
    SEVERITY_RANK,
    Advisory,
    AdvisoryPackage,
    Annotation,
    CheckRun,
    Feedback,
    Finding,
    PerformanceBudget,
    PerformanceMetric,
    ReviewerQualification,
    ReviewStatus,
    RunOrigin,
    SlaBreach,
    StageReview,
    Threat,
    ThreatModel,
    ThreatModelElement,
    TrainingRecord,
)
from .selectors import (
    check_runs_visible_to,
    feedback_visible_to,
    finding_sources,
    findings_visible_to,
    latest_harness_run,
    performance_metrics_visible_to,
    performance_table,
    stage_reviews_visible_to,
    threat_models_visible_to,
)

register_visibility(StageReview, stage_reviews_visible_to)
register_visibility(CheckRun, check_runs_visible_to)
register_visibility(Finding, findings_visible_to)
register_visibility(Annotation, collaboration.annotations_visible_to_user)
register_visibility(Feedback, feedback_visible_to)
register_visibility(ThreatModel, threat_models_visible_to)
register_visibility(PerformanceMetric, performance_metrics_visible_to)


class AssigneeFilter(admin.SimpleListFilter):
    title = "assignee"
    parameter_name = "assigned"

    def lookups(self, request, model_admin):
        return [("me", "Assigned to me"), ("none", "Unassigned"), ("others", "Assigned to others")]

    def queryset(self, request, queryset):
        if self.value() == "me":
            return queryset.filter(assignee=request.user)
        if self.value() == "none":
            return queryset.filter(assignee__isnull=True)
        if self.value() == "others":
            return queryset.filter(assignee__isnull=False).exclude(assignee=request.user)
        return queryset


class DueFilter(admin.SimpleListFilter):
    title = "due"
    parameter_name = "due"

    def lookups(self, request, model_admin):
        return [("overdue", "Overdue"), ("24h", "Due within 24 hours"), ("7d", "Due within 7 days")]

    def queryset(self, request, queryset):
        now = timezone.now()
        horizons = {"overdue": now, "24h": now + timedelta(hours=24), "7d": now + timedelta(days=7)}
        horizon = horizons.get(self.value() or "")
        if horizon is None:
            return queryset
        return queryset.filter(status__in=OPEN, due_at__lt=horizon)


class ReviewStatusFilter(admin.SimpleListFilter):
    """The queue shows open reviews unless asked for others: decided ones are the record."""

    title = "status"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("open", "Open (pending or in progress)"), *ReviewStatus.choices, ("all", "All")]

    def value(self):
        return super().value() or "open"

    def choices(self, changelist):
        for lookup, title in self.lookup_choices:  # no separate "All" without a value: "open" is the default
            yield {
                "selected": self.value() == lookup,
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }

    def queryset(self, request, queryset):
        if self.value() == "all":
            return queryset
        if self.value() == "open":
            return queryset.filter(status__in=OPEN)
        return queryset.filter(status=self.value())


REVIEW = "reviews.review_stagereview"


def _itself(review):
    return review


def _triage(state: str):
    return lambda obj, user, reason: services.finding_triage(finding=obj, actor=user, to_state=state, reason=reason)


def _reviewer(call):
    return lambda obj, user, reason: call(review=obj, actor=user, reason=reason)


def _worked(review, transition: str) -> bool:
    """A reviewer's action is offered on the stages reviewers work; the board decides its
    stage with the decision form beside the rating (decisions/decision_admin.py)."""
    return review.stage.kind != "decision" and can_proceed(getattr(review, transition))


def render_performance(run: CheckRun) -> str:
    return render_to_string("admin/warden/performance_table.html", {"table": performance_table(run=run)})


class CheckRunInline(ReadOnlyInline):
    """The stage's automated checks, with their verdicts, inline on the review page."""

    model = CheckRun
    fields = readonly_fields = (
        "check_key",
        "tool",
        "tool_version",
        "status",
        "progress",
        "attempts",
        "started_at",
        "finished_at",
        "finding_counts",
        "error",
    )

    @admin.display(description="Findings")
    def finding_counts(self, run):
        counts = run.summary.get("findings", {})
        return ", ".join(f"{counts[s]} {s}" for s in SEVERITY_RANK if counts.get(s)) or "none"


@admin.register(StageReview)
class StageReviewAdmin(ScopedAdmin):
    """The reviewers' queue: filter by stage, status, assignee and due time; soonest due first."""

    show_full_result_count = False
    list_display = ["version", "stage", "round", "status", "assignee", "due_at", "overdue"]
    list_filter = ["stage", ReviewStatusFilter, AssigneeFilter, DueFilter]
    list_select_related = ["version__plugin__organisation", "stage", "assignee"]
    search_fields = ["version__plugin__name", "version__version"]
    ordering = [F("due_at").asc(nulls_last=True), "pk"]  # type: ignore[list-item]
    readonly_fields = [
        "version",
        "stage",
        "round",
        "blocking",
        "status",
        "assignee",
        "started_at",
        "due_at",
        "decided_by",
        "decided_at",
        "decision_reason",
    ]
    service_actions = [
        ServiceAction(
            "claim",
            "Claim",
            lambda obj, user, reason: services.stage_claim(review=obj, actor=user),
            available=lambda obj: obj.is_open and obj.assignee_id is None and obj.stage.kind != "decision",
            perm=REVIEW,
            perm_on=_itself,
        ),
        ServiceAction(
            "pass",
            "Pass",
            _reviewer(services.stage_pass),
            reason="optional",
            available=lambda obj: _worked(obj, "pass_review") and obj.stage.kind != "compliance",
            perm=REVIEW,
            perm_on=_itself,
        ),
        ServiceAction(
            "fail",
            "Fail",
            _reviewer(services.stage_fail),
            reason="required",
            available=lambda obj: _worked(obj, "fail"),
            perm=REVIEW,
            perm_on=_itself,
        ),
        ServiceAction(
            "request_changes",
            "Request changes",
            _reviewer(services.stage_request_changes),
            reason="required",
            available=lambda obj: _worked(obj, "request_changes"),
            perm=REVIEW,
            perm_on=_itself,
        ),
        ServiceAction(
            "waive",
            "Waive",
            _reviewer(services.stage_waive),
            reason="required",
            available=lambda obj: _worked(obj, "waive"),
            perm="reviews.waive_stagereview",
        ),
    ]

    # compliance/admin.py adds the compliance stage's assessments and sign-off actions.
    inlines = [CheckRunInline]

    def scoped_queryset(self, request):
        return stage_reviews_visible_to(user=request.user)

    def has_add_permission(self, request):
        return False

    def change_view_context(self, obj):
        if obj is None:
            return {}
        events = audit_events_for(targets=[obj])
        run = latest_harness_run(version_id=obj.version_id) if obj.stage.kind == "performance" else None
        table = render_performance(run) if run else SafeString()
        return {"below_inlines": table + render_to_string("admin/warden/audit_trail.html", {"events": events})}

    @admin.display(description="Overdue")
    def overdue(self, obj):
        return format_html("<strong>{}</strong>", "overdue") if obj.is_overdue else ""


@admin.register(CheckRun)
class CheckRunAdmin(ScopedAdmin):
    list_display = ["check_key", "version", "origin", "tool", "status", "progress", "attempts", "finished_at"]
    list_filter = ["status", "origin", "check_key"]
    list_select_related = ["version__plugin"]
    show_full_result_count = False
    exclude = ["report"]  # its storage URL is not served: report_file is the download link
    readonly_fields = [
        "version",
        "stage_review",
        "check_key",
        "origin",
        "tool",
        "tool_version",
        "status",
        "progress",
        "attempts",
        "created_at",
        "started_at",
        "finished_at",
        "report_file",
        "summary",
        "error",
    ]
    service_actions = [
        ServiceAction(
            "rerun",
            "Run again",
            lambda obj, user, reason: services.check_run_rerun(run=obj, actor=user),
            transition="requeue",
        ),
    ]

    def scoped_queryset(self, request):
        return check_runs_visible_to(user=request.user)

    def get_urls(self):
        report = path(
            "<int:object_id>/report/", self.admin_site.admin_view(self.report_view), name="reviews_checkrun_report"
        )
        return [report, *super().get_urls()]

    def report_view(self, request, object_id):
        run = self.scoped_queryset(request).filter(pk=object_id).exclude(report="").first()
        if run is None:
            raise Http404("No such report.")
        return attachment(run.report, run.report.name.rsplit("/", 1)[-1])

    @admin.display(description="Report")
    def report_file(self, obj):
        if not obj.report:
            return "—"
        url = reverse("admin:reviews_checkrun_report", args=[obj.pk])
        return format_html('<a href="{}">{}</a> (download)', url, obj.report.name.rsplit("/", 1)[-1])

    def change_view_context(self, obj):
        if obj is None or obj.check_key != "performance.harness":
            return {}
        return {"below_inlines": render_performance(obj)}

    def has_add_permission(self, request):
        return False


@admin.register(Finding)
class FindingAdmin(ScopedAdmin):
    list_display = ["severity", "rule_id", "title", "path", "line", "version", "kind", "triage", "carried_over"]
    list_filter = ["severity", "kind", "triage", "carried_over", "tool", ("version", admin.RelatedOnlyFieldListFilter)]
    list_select_related = ["version__plugin"]
    search_fields = ["rule_id", "title", "path", "fingerprint"]
    show_full_result_count = False
    readonly_fields = [
        "version",
        "check_run",
        "kind",
        "severity",
        "rule_id",
        "title",
        "message",
        "path",
        "line",
        "cwe",
        "tool",
        "fingerprint",
        "sources",
        "snippet",
        "data",
        "carried_over",
        "triage",
        "plan",
        "plan_due",
    ]
    service_actions = [
        ServiceAction(state, label, _triage(state), reason="required", available=lambda obj, s=state: obj.triage != s)
        for state, label in [
            ("false_positive", "Mark false positive"),
            ("accepted", "Accept the risk"),
            ("fixed", "Mark fixed"),
            ("open", "Re-open"),
        ]
    ]

    def scoped_queryset(self, request):
        return findings_visible_to(user=request.user)

    def has_add_permission(self, request):
        return False

    @admin.display(description="Reported by")
    def sources(self, obj):
        """Every current source reporting this place; the rating counts them as one finding."""
        rows = []
        for source in finding_sources(finding=obj):
            run = source.check_run
            by = "Warden" if run.origin == RunOrigin.INTERNAL else f"posted by {run.posted_by or 'unknown'}"
            url = reverse("admin:reviews_finding_change", args=[source.pk])
            tool = run.tool or run.check_key
            rows.append((url, tool, run.check_key, by, source.severity, source.get_triage_display()))
        return format_html_join(SafeString("<br>"), '<a href="{}">{}</a> ({}, {}): {}, {}', rows)

    def change_view_context(self, obj):
        if obj is None:
            return {}
        trail = obj.triage_trail.select_related("actor")
        return {"below_inlines": render_to_string("admin/warden/triage_trail.html", {"trail": trail})}


class AdvisoryPackageInline(ReadOnlyInline):
    model = AdvisoryPackage
    fields = readonly_fields = ("ecosystem", "name")
    show_change_link = False


@admin.register(Advisory)
class AdvisoryAdmin(ReadOnlyAdmin):
    """The OSV store, read-only: advisories arrive by import (command or API), never by hand."""

    list_display = ["osv_id", "severity", "summary", "modified", "withdrawn"]
    list_filter = ["severity", ("withdrawn", admin.EmptyFieldListFilter)]
    search_fields = ["osv_id", "aliases", "summary", "packages__name"]
    readonly_fields = ["osv_id", "aliases", "summary", "severity", "modified", "published", "withdrawn", "raw"]
    inlines = [AdvisoryPackageInline]
    show_full_result_count = False


@admin.register(SlaBreach)
class SlaBreachAdmin(ReadOnlyAdmin):
    list_display = ["review", "stage", "planned_due", "resolved_at", "hours_over"]
    list_filter = ["stage", ("resolved_at", admin.EmptyFieldListFilter)]
    list_select_related = ["review__version__plugin", "review__stage", "stage"]
    readonly_fields = ["review", "stage", "planned_due", "detected_at", "resolved_at", "hours_over"]

    def has_module_permission(self, request):
        return request.user.has_perm("reviews.view_slabreach")

    def has_view_permission(self, request, obj=None):
        return request.user.has_perm("reviews.view_slabreach")


class LapseFilter(admin.SimpleListFilter):
    title = "lapse"
    parameter_name = "lapse"

    def lookups(self, request, model_admin):
        return [("30d", "Lapses within 30 days"), ("lapsed", "Lapsed")]

    def queryset(self, request, queryset):
        today = timezone.localdate()
        if self.value() == "30d":
            return queryset.filter(expires_on__gte=today, expires_on__lte=today + timedelta(days=30))
        if self.value() == "lapsed":
            return queryset.filter(expires_on__lt=today)
        return queryset


@admin.register(ReviewerQualification)
class ReviewerQualificationAdmin(SimpleHistoryAdmin):
    list_display = ["reviewer", "stage_kind", "earned_on", "expires_on", "granted_by"]
    list_filter = ["stage_kind", LapseFilter]
    list_select_related = ["reviewer", "granted_by"]
    ordering = [F("expires_on").asc(nulls_last=True)]


@admin.register(TrainingRecord)
class TrainingRecordAdmin(SimpleHistoryAdmin):
    list_display = ["user", "course", "completed_on", "expires_on"]
    list_filter = ["course"]
    list_select_related = ["user"]


class AnnotationForm(ServiceCreateForm):
    class Meta:
        model = Annotation
        fields = ["version", "stage_review", "finding", "assessment", "parent", "kind", "body", "to_author"]

    def create(self, data):
        return collaboration.annotation_add(actor=self.user, **data)


@admin.register(Annotation)
class AnnotationAdmin(ServiceCreateAdminMixin, ScopedAdmin):
    """Threads on versions, stages and findings; authors see only what is addressed to them."""

    add_form = AnnotationForm
    list_display = ["created_at", "version", "author", "kind", "short_body", "to_author", "resolved_at"]
    list_filter = ["kind", "to_author", ("resolved_at", admin.EmptyFieldListFilter)]
    list_select_related = ["version__plugin", "author"]
    readonly_fields = [
        "version",
        "stage_review",
        "finding",
        "assessment",
        "parent",
        "author",
        "kind",
        "body",
        "to_author",
        "created_at",
        "resolved_at",
        "resolved_by",
    ]
    raw_id_fields = ["version", "stage_review", "finding", "assessment", "parent"]
    service_actions = [
        ServiceAction(
            "resolve",
            "Resolve thread",
            lambda obj, user, reason: collaboration.annotation_resolve(annotation=obj, actor=user),
            available=lambda obj: obj.parent_id is None and obj.resolved_at is None,
        ),
    ]

    def scoped_queryset(self, request):
        return collaboration.annotations_visible_to_user(user=request.user)

    def has_add_permission(self, request):
        return request.user.is_active and request.user.is_staff

    @admin.display(description="Body")
    def short_body(self, obj):
        return obj.body[:80]


class FeedbackForm(forms.ModelForm):
    rating = forms.TypedChoiceField(choices=[(i, str(i)) for i in range(1, 6)], coerce=int)

    class Meta:
        model = Feedback
        fields = ["rating", "comment"]

    def clean(self):
        data = super().clean()
        if self.instance.answered_at:
            raise forms.ValidationError("You already gave feedback on this version.")
        return data


@admin.register(Feedback)
class FeedbackAdmin(admin.ModelAdmin):
    """Each user answers the feedback asked of them; platform admins read all of it."""

    list_display = ["version", "user", "role", "rating", "requested_at", "answered_at"]
    list_filter = ["role", "rating"]
    list_select_related = ["version__plugin", "user"]
    form = FeedbackForm

    def get_queryset(self, request):
        everything = super().get_queryset(request)
        if request.user.has_perm("reviews.view_feedback"):
            return everything
        return everything.filter(user=request.user)

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_staff

    def has_view_permission(self, request, obj=None):
        return self.has_module_permission(request) and (
            obj is None or obj.user_id == request.user.pk or request.user.has_perm("reviews.view_feedback")
        )

    def has_change_permission(self, request, obj=None):
        return obj is not None and obj.user_id == request.user.pk and obj.answered_at is None

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        try:
            collaboration.feedback_submit(
                feedback=obj,
                actor=request.user,
                rating=form.cleaned_data["rating"],
                comment=form.cleaned_data.get("comment", ""),
            )
        except WardenError as exc:
            self.message_user(request, exc.detail, messages.ERROR)


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


@admin.register(PerformanceBudget)
class PerformanceBudgetAdmin(SimpleHistoryAdmin):
    """Platform admins set what a plugin category may cost on a host platform."""

    list_display = [
        "host_platform",
        "category",
        "startup_ms",
        "peak_rss_mb",
        "cpu_ms",
        "latency_p95_ms",
        "throughput_rps",
        "regression_percent",
        "typical_threads",
        "peak_threads",
    ]
    list_filter = ["host_platform"]
    list_select_related = ["host_platform"]


METRIC_COLUMNS: list[Any] = [
    "version",
    "kpi",
    "concurrency",
    "value",
    "unit",
    "budget",
    "within_budget",
    "baseline_value",
    "change",
    "regressed",
]


@admin.register(PerformanceMetric)
class PerformanceMetricAdmin(ReadOnlyAdmin):
    list_display = METRIC_COLUMNS
    list_filter = ["kpi", "within_budget", "regressed"]
    list_select_related = ["version__plugin"]
    readonly_fields = [*METRIC_COLUMNS, "check_run", "baseline_version"]

    @admin.display(description="Change", ordering="change_percent")
    def change(self, obj):
        if obj.change_percent is None:
            return ""
        return "{} ({})".format(*describe_change(KPIS.get(obj.kpi), obj.change_percent))

    def get_queryset(self, request):
        visible = versions_visible_to(user=request.user)
        return super().get_queryset(request).filter(version__in=visible)
