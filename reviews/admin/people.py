"""SLA breaches, reviewer qualifications and training records."""

from datetime import timedelta

from django import forms
from django.contrib import admin
from django.db.models import F
from django.utils import timezone
from simple_history.admin import SimpleHistoryAdmin

from governance.admin_base import (
    ReadOnlyAdmin,
)

from .. import people
from ..models import (
    ReviewerQualification,
    SlaBreach,
    TrainingRecord,
)
from .forms import refusal_as_form_error


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


class QualificationForm(forms.ModelForm):
    class Meta:
        model = ReviewerQualification
        fields = ["reviewer", "stage_kind", "earned_on", "expires_on", "training"]

    def clean(self):
        super().clean()
        data = self.cleaned_data
        if not self.errors:
            with refusal_as_form_error():
                people.qualification_check(
                    reviewer=data.get("reviewer"),
                    training=data.get("training"),
                    earned_on=data.get("earned_on"),
                    expires_on=data.get("expires_on"),
                )
        return data


@admin.register(ReviewerQualification)
class ReviewerQualificationAdmin(SimpleHistoryAdmin):
    """Platform admins grant qualifications (as themselves) and give them an expiry date to
    withdraw them; never deleted, since assignments and sign-offs were checked against them."""

    form = QualificationForm
    list_display = ["reviewer", "stage_kind", "earned_on", "expires_on", "granted_by"]
    list_filter = ["stage_kind", LapseFilter]
    list_select_related = ["reviewer", "granted_by"]
    ordering = [F("expires_on").asc(nulls_last=True)]
    readonly_fields = ["granted_by"]

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        people.qualification_save(qualification=obj, actor=request.user, changed=form.changed_data)


class TrainingRecordForm(forms.ModelForm):
    class Meta:
        model = TrainingRecord
        fields = ["user", "course", "completed_on", "expires_on"]

    def clean(self):
        super().clean()
        data = self.cleaned_data
        if not self.errors:
            with refusal_as_form_error():
                people.training_record_check(
                    record_pk=self.instance.pk,
                    user=data.get("user"),
                    completed_on=data.get("completed_on"),
                    expires_on=data.get("expires_on"),
                )
        return data


@admin.register(TrainingRecord)
class TrainingRecordAdmin(SimpleHistoryAdmin):
    """Platform admins record completed courses; a mistaken record is corrected, never deleted,
    since qualifications rest on it."""

    form = TrainingRecordForm
    list_display = ["user", "course", "completed_on", "expires_on"]
    list_filter = ["course"]
    list_select_related = ["user"]

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        people.training_record_save(record=obj, actor=request.user, changed=form.changed_data)
