"""Writes on performance budgets (platform admins, in the admin). What a budget means when a
version is measured is reviews/performance.py, which stays free of writes.

A budget may be deleted: its host platform's blank-category budget, or else the platform's
resource limits, then apply, and every metric already measured keeps the budget figure it
was judged against. The audit event keeps the deleted figures.
"""

from django.contrib.auth.models import User
from django.db import transaction

from governance.audit import audit_record
from governance.errors import ValidationFailed
from governance.permissions import require_perm
from governance.transitions import save_with_audit

from .models import PerformanceBudget
from .performance import BUDGETED


def performance_budget_check(*, typical_threads: int | None, peak_threads: int | None) -> None:
    """Raise ValidationFailed if the budget would not make sense (the admin form asks first)."""
    if typical_threads and peak_threads and typical_threads > peak_threads:
        message = "Peak concurrency cannot be below typical concurrency."
        raise ValidationFailed(
            message, code="invalid", errors=[{"field": "peak_threads", "code": "invalid", "message": message}]
        )


def performance_budget_save(*, budget: PerformanceBudget, actor: User, changed: list[str]) -> PerformanceBudget:
    adding = budget._state.adding
    require_perm(
        actor,
        "reviews.add_performancebudget" if adding else "reviews.change_performancebudget",
        detail=f"{actor} may not set performance budgets.",
    )
    performance_budget_check(typical_threads=budget.typical_threads, peak_threads=budget.peak_threads)
    with transaction.atomic():
        save_with_audit(
            budget,
            actor=actor,
            action="performance_budget.create" if adding else "performance_budget.change",
            data={**_figures(budget), "changed": sorted(changed)},
        )
    return budget


def performance_budget_delete(*, budget: PerformanceBudget, actor: User) -> None:
    require_perm(actor, "reviews.delete_performancebudget", detail=f"{actor} may not delete performance budgets.")
    with transaction.atomic():
        budget = PerformanceBudget.objects.select_for_update().select_related("host_platform").get(pk=budget.pk)
        audit_record(actor=actor, action="performance_budget.delete", target=budget, data=_figures(budget))
        budget._history_user = actor  # type: ignore[attr-defined]
        budget._change_reason = "performance_budget.delete"  # type: ignore[attr-defined]
        budget.delete()


def _figures(budget: PerformanceBudget) -> dict:
    return {
        "host_platform": budget.host_platform.name,
        "category": budget.category,
        **{kpi: getattr(budget, kpi) for kpi in BUDGETED},
        "regression_percent": budget.regression_percent,
        "typical_threads": budget.typical_threads,
        "peak_threads": budget.peak_threads,
    }
