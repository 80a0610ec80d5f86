"""Check runs, findings and advisories."""

from django.contrib import admin
from django.http import Http404
from django.template.loader import render_to_string
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from governance.admin_actions import ServiceAction
from governance.admin_base import (
    ReadOnlyAdmin,
    ReadOnlyInline,
    ScopedAdmin,
    attachment,
)

from .. import services
from ..models import (
    Advisory,
    AdvisoryPackage,
    CheckRun,
    Finding,
    RunOrigin,
)
from ..selectors import (
    check_runs_visible_to,
    finding_sources,
    findings_visible_to,
)
from .stages import render_performance


def _triage(state: str):
    return lambda obj, user, reason: services.finding_triage(finding=obj, actor=user, to_state=state, reason=reason)


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
