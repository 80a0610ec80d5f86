"""Performance budgets and metrics."""

from typing import Any

from django import forms
from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from governance.admin_base import (
    ReadOnlyAdmin,
)
from submissions.selectors import versions_visible_to

from .. import budgets
from ..kpis import KPIS, describe_change
from ..models import (
    PerformanceBudget,
    PerformanceMetric,
)
from .forms import refusal_as_form_error


class BudgetForm(forms.ModelForm):
    class Meta:
        model = PerformanceBudget
        fields = [
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

    def clean(self):
        super().clean()
        data = self.cleaned_data
        if not self.errors:
            with refusal_as_form_error():
                budgets.performance_budget_check(
                    typical_threads=data.get("typical_threads"), peak_threads=data.get("peak_threads")
                )
        return data


@admin.register(PerformanceBudget)
class PerformanceBudgetAdmin(SimpleHistoryAdmin):
    """Platform admins set what a plugin category may cost on a host platform. Saves and
    deletes go through reviews/budgets.py, each with its audit event."""

    form = BudgetForm
    list_display = BudgetForm.Meta.fields
    list_filter = ["host_platform"]
    list_select_related = ["host_platform"]

    def save_model(self, request, obj, form, change):
        budgets.performance_budget_save(budget=obj, actor=request.user, changed=form.changed_data)

    def delete_model(self, request, obj):
        budgets.performance_budget_delete(budget=obj, actor=request.user)

    def delete_queryset(self, request, queryset):
        for budget in queryset.order_by("pk"):
            budgets.performance_budget_delete(budget=budget, actor=request.user)


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
