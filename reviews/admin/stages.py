"""Stage reviews: the reviewer's page, its filters and actions, and the checks it ran."""

from datetime import timedelta

from django.contrib import admin
from django.db.models import F
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django_fsm import can_proceed

from governance.admin_actions import ServiceAction
from governance.admin_base import (
    ReadOnlyInline,
    ScopedAdmin,
    register_visibility,
)
from governance.selectors import audit_events_for

from .. import collaboration, services
from ..models import (
    OPEN,
    SEVERITY_RANK,
    Annotation,
    CheckRun,
    Feedback,
    Finding,
    PerformanceMetric,
    ReviewStatus,
    StageReview,
    ThreatModel,
)
from ..responses import responses_by_ids
from ..selectors import (
    check_runs_visible_to,
    feedback_visible_to,
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


def _reviewer(call):
    return lambda obj, user, reason: call(review=obj, actor=user, reason=reason)


def _with_responses(call):
    """Failing and requesting changes also take the canned responses a form posted as
    ``responses`` ids (the dossier does; this page's own buttons post none)."""
    return lambda obj, user, reason, responses=(): call(
        review=obj, actor=user, reason=reason, responses=responses_by_ids(responses)
    )


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
        "needs_human_review",
        "escalation_acknowledged_at",
    ]
    exclude = ["escalation_flags"]  # shown as "needs_human_review"
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
            _with_responses(services.stage_fail),
            reason="required",
            available=lambda obj: _worked(obj, "fail"),
            perm=REVIEW,
            perm_on=_itself,
            posted=("responses",),
        ),
        ServiceAction(
            "request_changes",
            "Request changes",
            _with_responses(services.stage_request_changes),
            reason="required",
            available=lambda obj: _worked(obj, "request_changes"),
            perm=REVIEW,
            perm_on=_itself,
            posted=("responses",),
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

    @admin.display(description="Needs human review")
    def needs_human_review(self, obj):
        """What the version may do that the last approved one could not (reviews/escalation.py)."""
        if not obj.escalation_flags:
            return "—"
        return format_html_join(SafeString("<br>"), "{}", ((flag["reason"],) for flag in obj.escalation_flags))

    @admin.display(description="Overdue")
    def overdue(self, obj):
        return format_html("<strong>{}</strong>", "overdue") if obj.is_overdue else ""
