"""Reads on stage reviews, filtered by what the user may see."""

from django.db.models import Count, Q, QuerySet
from django.utils import timezone
from guardian.shortcuts import get_objects_for_user

from submissions.selectors import plugins_visible_to

from .models import OPEN, SEVERITY_RANK, CheckRun, Finding, StageReview


def reviews_assigned_to_groups_of(*, user) -> QuerySet[StageReview]:
    """The stage reviews the user's groups hold the review permission on."""
    return get_objects_for_user(user, "reviews.review_stagereview", klass=StageReview, accept_global_perms=False)


def stage_reviews_visible_to(*, user) -> QuerySet[StageReview]:
    if user.has_perm("reviews.view_stagereview"):
        return StageReview.objects.all()
    return StageReview.objects.filter(
        Q(pk__in=reviews_assigned_to_groups_of(user=user).values("pk"))
        | Q(version__plugin__in=plugins_visible_to(user=user))
    )


def open_reviews_assigned_to(*, user) -> QuerySet[StageReview]:
    return (
        StageReview.objects.filter(assignee=user, status__in=OPEN)
        .select_related("stage", "version__plugin__organisation")
        .order_by("due_at")
    )


def overdue_reviews_visible_to(*, user) -> QuerySet[StageReview]:
    return (
        stage_reviews_visible_to(user=user)
        .filter(status__in=OPEN, due_at__lt=timezone.now())
        .select_related("stage", "assignee", "version__plugin__organisation")
        .order_by("due_at")
    )


def check_runs_visible_to(*, user) -> QuerySet[CheckRun]:
    from submissions.selectors import versions_visible_to

    return CheckRun.objects.filter(version__in=versions_visible_to(user=user))


def findings_visible_to(*, user) -> QuerySet[Finding]:
    from submissions.selectors import versions_visible_to

    return Finding.objects.filter(version__in=versions_visible_to(user=user))


def latest_runs(runs) -> list:
    """Of several runs of the same check (earlier rounds, re-matches, re-posted reports of
    one tool by one poster), only the newest speaks for the version now: an author's report
    does not replace a reviewer's. ``runs`` in any order."""
    latest: dict[tuple[str, str, int | None], object] = {}
    for run in sorted(runs, key=lambda r: r.pk):
        latest[(run.check_key, run.tool, run.posted_by_id)] = run
    return list(latest.values())


def finding_counts(*, version) -> list[dict]:
    """Open, new and total findings of the version's latest runs by severity, most severe first."""
    current = [
        r.pk for r in latest_runs(CheckRun.objects.filter(version=version).only("pk", "check_key", "tool", "posted_by"))
    ]
    rows = {
        row["severity"]: row
        for row in Finding.objects.filter(check_run__in=current)
        .values("severity")
        .annotate(
            total=Count("pk"), open=Count("pk", filter=Q(triage="open")), new=Count("pk", filter=Q(carried_over=False))
        )
    }
    return [{"severity": s, **rows.get(s, {"total": 0, "open": 0, "new": 0})} for s in SEVERITY_RANK]


def latest_harness_run(*, version_id: int) -> CheckRun | None:
    return (
        CheckRun.objects.filter(version_id=version_id, check_key="performance.harness", finished_at__isnull=False)
        .order_by("-finished_at", "-pk")
        .first()
    )


def performance_table(*, run: CheckRun) -> dict:
    """A harness run as the performance reviewer's table: per KPI, the budget, this version, the
    last approved version measured beside it in the same run, and the change."""
    from .performance import KPIS

    rows = []
    for metric in run.metrics.select_related("baseline_version"):
        kpi = KPIS.get(metric.kpi)
        bound = "≥" if kpi and kpi.higher_is_better else "≤"
        rows.append(
            {
                "kpi": kpi.title if kpi else metric.kpi,
                "threads": metric.concurrency,
                "unit": metric.unit,
                "budget": f"{bound} {metric.budget:g}" if metric.budget is not None else "",
                "value": f"{metric.value:g}",
                "baseline": f"{metric.baseline_value:g}" if metric.baseline_value is not None else "",
                "change": f"{metric.change_percent:+g}%" if metric.change_percent is not None else "",
                "within_budget": metric.within_budget,
                "regressed": metric.regressed,
            }
        )
    return {"run": run, "rows": rows, "baseline": run.summary.get("baseline"), "budget": run.summary.get("budget")}
