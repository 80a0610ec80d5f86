from django.contrib import admin
from django.http import FileResponse, Http404
from django.urls import path, reverse
from django.utils.html import format_html
from simple_history.admin import SimpleHistoryAdmin

from governance.admin_actions import ServiceAction
from governance.admin_base import ReadOnlyInline, ScopedAdmin
from submissions.selectors import versions_visible_to

from .models import Checklist, Control, ControlAssessment, Evidence, Framework, ReReview
from .rereviews import re_review_complete


class ControlInline(ReadOnlyInline):
    model = Control
    fields = readonly_fields = ("key", "text", "criticality", "applies_to_data", "expression")
    show_change_link = False


@admin.register(Framework)
class FrameworkAdmin(SimpleHistoryAdmin):
    """Frameworks change by importing YAML (manage.py import_framework): versions are never edited."""

    list_display = ["key", "version", "name", "imported_at"]
    list_filter = ["key"]
    readonly_fields = ["key", "version", "name", "description", "imported_at"]
    inlines = [ControlInline]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Checklist)
class ChecklistAdmin(SimpleHistoryAdmin):
    list_display = ["name", "categories", "re_review_days"]
    filter_horizontal = ["frameworks"]


class ControlAssessmentInline(ReadOnlyInline):
    """On the compliance review's page: every control, its result and what decided it."""

    model = ControlAssessment
    fields = readonly_fields = ("control", "criticality", "result", "status", "automatic", "inputs", "reason")
    show_change_link = False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("control__framework")

    @admin.display(description="Criticality")
    def criticality(self, obj):
        return obj.control.get_criticality_display()


@admin.register(Evidence)
class EvidenceAdmin(ScopedAdmin):
    """Evidence of the versions the user may see; files are downloaded, never shown inline."""

    list_display = ["version", "kind", "revision", "file_name", "status", "uploaded_by", "uploaded_at", "expires_on"]
    list_filter = ["kind", "status"]
    list_select_related = ["version__plugin", "uploaded_by"]
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

    def scoped_queryset(self, request):
        return Evidence.objects.filter(version__in=versions_visible_to(user=request.user))

    def has_add_permission(self, request):
        return False

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
        response = FileResponse(
            evidence.file.open("rb"),
            as_attachment=True,
            filename=evidence.file_name,
            content_type="application/octet-stream",
        )
        response["X-Content-Type-Options"] = "nosniff"
        response["Content-Security-Policy"] = "sandbox"
        return response

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
        return ReReview.objects.filter(version__in=versions_visible_to(user=request.user))

    def has_add_permission(self, request):
        return False
