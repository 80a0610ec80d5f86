"""SLA breaches, reviewer qualifications and training records."""

from datetime import timedelta

from django.contrib import admin
from django.db.models import F
from django.utils import timezone
from simple_history.admin import SimpleHistoryAdmin

from governance.admin_base import (
    ReadOnlyAdmin,
)

from ..models import (
    ReviewerQualification,
    SlaBreach,
    TrainingRecord,
)


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
