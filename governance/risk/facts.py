"""The fact document of a version: what ratings and policies read (documented in docs/policies.md).

Built from the latest run of each check, the findings of those runs (less what an approved,
unexpired exemption covers, counted separately), the latest performance harness run, the
current compliance review and the manifest. Every count is present even when zero, and keys
are sorted when stored, so the document is the same whenever the inputs are.
"""

from collections import Counter
from decimal import Decimal

from django.db.models import Count
from django.utils import timezone

from compliance.models import ControlAssessment
from reviews.findings_data import KINDS, SEVERITIES
from reviews.models import CheckRun, Finding, RunStatus, Triage
from reviews.selectors import latest_runs

from .exemptions import Cover, covering
from .rubric import CRITICALITIES

OPEN_TRIAGE = (Triage.OPEN, Triage.REMEDIATION_PLANNED)
PERFORMANCE_CHECK = "performance.harness"


def version_facts(*, version, now=None) -> dict:
    """The fact document of ``version`` now (without ``policies`` and ``rating``, which the
    assessment adds). About eight queries, whatever the number of findings."""
    now = now or timezone.now()
    current = _current_runs(version)
    cover = covering(version=version, now=now)
    return {
        "version": {
            "id": version.pk,
            "plugin": version.plugin.name,
            "organisation": version.plugin.organisation.slug,
            "category": version.plugin.category,
            "number": version.version,
            "status": version.status,
        },
        "manifest": version.manifest,
        "checks": _check_statuses(current),
        **_findings(current, cover),
        "performance": _performance(current),
        "compliance": _compliance(version),
        "exemptions": {
            "policies": cover.policies,
            "findings": cover.fingerprints,
            "compensating_controls": cover.compensating_controls,
        },
    }


def _current_runs(version) -> list[CheckRun]:
    runs = CheckRun.objects.filter(version=version).only("pk", "check_key", "tool", "status", "posted_by")
    return sorted(latest_runs(runs), key=lambda r: r.pk)


# Several tools can post reports of one format (one check key, one latest run per tool):
# the least finished of them speaks for the key, so a succeeded report never hides an errored one.
STATUS_PRECEDENCE = (RunStatus.ERRORED, RunStatus.RUNNING, RunStatus.QUEUED, RunStatus.FAILED, RunStatus.SUCCEEDED)


def _check_statuses(runs: list[CheckRun]) -> dict[str, str]:
    def rank(status: str) -> int:
        return STATUS_PRECEDENCE.index(status) if status in STATUS_PRECEDENCE else -1  # unknown: worst

    statuses: dict[str, str] = {}
    for run in runs:
        if run.check_key not in statuses or rank(run.status) < rank(statuses[run.check_key]):
            statuses[run.check_key] = run.status
    return statuses


def current_run_ids(*, version) -> list[int]:
    """The latest run of each check (and each external tool): they speak for the version now."""
    return [run.pk for run in _current_runs(version)]


def _findings(runs: list, cover: Cover) -> dict:
    rows = (
        Finding.objects.filter(check_run__in=[r.pk for r in runs], triage__in=OPEN_TRIAGE)
        .values("kind", "severity", "fingerprint", "data__capability")
        .annotate(n=Count("pk"))
        .order_by()
    )
    open_by_kind: dict[str, Counter] = {kind: Counter() for kind in KINDS}
    exempted_by_kind: dict[str, Counter] = {kind: Counter() for kind in KINDS}
    capabilities = set()
    for row in rows:
        exempted = row["fingerprint"] in cover.fingerprints
        (exempted_by_kind if exempted else open_by_kind)[row["kind"]][row["severity"]] += row["n"]
        if row["kind"] == "capability" and not exempted:
            capabilities.add(str(row["data__capability"] or "unknown"))
    return {
        "findings": {
            "open": {s: sum(open_by_kind[k][s] for k in KINDS) for s in SEVERITIES},
            "by_kind": {k: {s: open_by_kind[k][s] for s in SEVERITIES} for k in KINDS},
            "exempted": sum(sum(c.values()) for c in exempted_by_kind.values()),
            "exempted_by_kind": {k: {s: exempted_by_kind[k][s] for s in SEVERITIES} for k in KINDS},
        },
        "capabilities": {"undeclared": sorted(capabilities)},
    }


def _performance(runs: list) -> dict:
    """The latest performance harness run's KPIs; ``measured: false`` and zeros without one."""
    from reviews.models import PerformanceMetric

    harness = [r for r in runs if r.check_key == PERFORMANCE_CHECK]
    metrics = list(PerformanceMetric.objects.filter(check_run=harness[-1]).order_by("pk")) if harness else []
    kpis = {
        (m.kpi if m.concurrency is None else f"{m.kpi}@{m.concurrency}"): {
            "value": m.value,
            "unit": m.unit,
            "budget": m.budget,
            "within_budget": m.within_budget,
            "change_percent": m.change_percent,
            "regressed": m.regressed,
        }
        for m in metrics
    }
    regressed = sorted(k for k, kpi in kpis.items() if kpi["regressed"])
    worst = max((Decimal(str(kpis[k]["change_percent"] or 0)) for k in regressed), default=Decimal(0))
    return {
        "measured": bool(metrics),
        "kpis": kpis,
        "budget_breaches": sum(kpi["within_budget"] is False for kpi in kpis.values()),
        "regressed": regressed,
        "max_regression_percent": float(max(worst, Decimal(0))),
    }


def _compliance(version) -> dict:
    """The compliance review of the current round: its controls' results and the sign-off."""
    from reviews.models import StageReview

    review = (
        StageReview.objects.filter(version=version, round=version.review_round, stage__kind="compliance")
        .select_related("sign_off")
        .first()
    )
    results = (
        ControlAssessment.objects.filter(stage_review=review)
        .values("result", "control__criticality")
        .annotate(n=Count("pk"))
        .order_by()
        if review
        else []
    )
    counts: Counter = Counter()
    by_result: dict[str, Counter] = {"not_met": Counter(), "partially_met": Counter()}
    for row in results:
        counts[row["result"]] += row["n"]
        if row["result"] in by_result:
            by_result[row["result"]][row["control__criticality"]] += row["n"]
    sign_off = getattr(review, "sign_off", None) if review else None
    return {
        "reviewed": review is not None,
        "signed_off": sign_off is not None,
        "residual_risk": sign_off.residual_risk if sign_off else "none",
        "controls": {r: counts[r] for r in ("met", "partially_met", "not_met", "not_applicable", "pending")},
        "not_met": {c: by_result["not_met"][c] for c in CRITICALITIES},
        "partially_met": {c: by_result["partially_met"][c] for c in CRITICALITIES},
    }
