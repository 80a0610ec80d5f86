from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from governance.admin_base import ReadOnlyInline

from .models import Checklist, Control, ControlAssessment, Framework


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
