"""The fact document of a version: what ratings and policies read (documented in docs/policies.md).

Built from the latest run of each check, the findings of those runs (less what an approved,
unexpired exemption covers, counted separately), the latest performance harness run, the
current compliance review and the manifest. Every count is present even when zero, and keys
are sorted when stored, so the document is the same whenever the inputs are.
"""

from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import cast

from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from compliance.models import ControlAssessment
from reviews.escalation import version_escalation
from reviews.findings_data import KINDS, SEVERITIES
from reviews.models import (
    SEVERITY_RANK,
    CheckRun,
    Finding,
    PerformanceMetric,
    ReviewStatus,
    RunOrigin,
    RunStatus,
    StageReview,
    Triage,
)
from reviews.selectors import importing_reports, latest_runs, places, revision_runs
from submissions.models import PluginVersion

from .rubric import CRITICALITIES, as_stored
from .selectors import Cover, covering

OPEN_TRIAGE = (Triage.OPEN, Triage.REMEDIATION_PLANNED)
PERFORMANCE_CHECK = "performance.harness"


def version_facts(*, version: PluginVersion, now: datetime | None = None) -> dict:
    """The fact document of ``version`` now (without ``policies`` and ``rating``, which the
    assessment adds). About nine queries, whatever the number of findings."""
    now = now or timezone.now()
    runs = revision_runs(version=version)
    current = _current_runs(runs)
    cover = covering(version=version, now=now)
    checks = {**_check_statuses(current + importing_reports(runs)), **_not_yet_queued(version)}
    document = {
        "version": {
            "id": version.pk,
            "plugin": version.plugin.name,
            "organisation": version.plugin.organisation.slug,
            "category": version.plugin.category,
            "number": version.version,
            "status": version.status,
        },
        "manifest": version.manifest,
        "checks": dict(sorted(checks.items())),
        **_findings(current, cover),
        "performance": _performance(current),
        "compliance": _compliance(version),
        "escalation": version_escalation(version=version),  # needs human review: reviews/escalation.py
        "exemptions": {
            "policies": cover.policies,
            "findings": cover.fingerprints,
            "compensating_controls": cover.compensating_controls,
        },
    }
    return cast(dict, as_stored(document))


def _current_runs(runs: list[CheckRun]) -> list[CheckRun]:
    """Of a revision's runs, those that speak for it now (``latest_runs``), oldest first."""
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


NOT_RUN = "not_run"  # a check the current round will run and has not queued yet
SKIPPED = "skipped"  # a check of a stage waived before it started: it will not run this round
FINISHED = (RunStatus.SUCCEEDED, RunStatus.FAILED)  # the check judged the version
WAITING = (NOT_RUN, RunStatus.QUEUED, RunStatus.RUNNING)  # it will judge it: the gate is pending


def _not_yet_queued(version: PluginVersion) -> dict[str, str]:
    """The checks of the current round's stages that have not started, whatever an earlier
    round's run of the same check said: ``not_run`` for a stage still to start (the gate waits
    for it), ``skipped`` for one waived before it started (it never will: waiving a stage does
    not make its checks pass, so checks-complete fails). A started stage queued its runs."""
    never_started = Q(status=ReviewStatus.PENDING) | Q(status=ReviewStatus.WAIVED, started_at__isnull=True)
    reviews = StageReview.objects.filter(never_started, version=version, round=version.review_round).values_list(
        "status", "stage__checks"
    )
    return {
        key: NOT_RUN if status == ReviewStatus.PENDING else SKIPPED
        for status, checks in reviews
        for key in checks or ()
    }


def unfinished_checks(checks: dict[str, str]) -> list[str]:
    """``key (status)`` of every check that has not judged the version: not run, queued,
    running or errored. Policies over check results count these as violations."""
    return [f"{key} ({status})" for key, status in sorted(checks.items()) if status not in FINISHED]


def current_run_ids(*, version: PluginVersion) -> list[int]:
    """The latest run of each check (and each external tool): they speak for the version now."""
    return [run.pk for run in _current_runs(revision_runs(version=version))]


def _findings(runs: list, cover: Cover) -> dict:
    """Open and exempted findings by kind and severity, each finding counted once.

    Findings that several current runs report at one place (``location_key``: tool family,
    rule, path, line; e.g. Warden's bandit check and a bandit SARIF from CI) are one finding
    with several sources. Most findings have one source and are counted in the database;
    only the shared places are read row by row (``_merged``)."""
    current = Finding.objects.filter(check_run__in=[r.pk for r in runs])
    shared = (
        current.exclude(location_key="")
        .values("location_key")
        .annotate(sources=Count("check_run", distinct=True))
        .filter(sources__gt=1)
        .values("location_key")
        .order_by()
    )
    rows = (
        current.filter(triage__in=OPEN_TRIAGE)
        .exclude(location_key__in=shared)
        .values("kind", "severity", "fingerprint", "data__capability")
        .annotate(n=Count("pk"))
        .order_by()
    )
    open_by_kind: dict[str, Counter] = {kind: Counter() for kind in KINDS}
    exempted_by_kind: dict[str, Counter] = {kind: Counter() for kind in KINDS}
    capabilities = set()

    def count(kind: str, severity: str, exempted: bool, capability: object, n: int = 1) -> None:
        (exempted_by_kind if exempted else open_by_kind)[kind][severity] += n
        if kind == "capability" and not exempted:
            capabilities.add(str(capability or "unknown"))

    for row in rows:
        count(row["kind"], row["severity"], row["fingerprint"] in cover.fingerprints, row["data__capability"], row["n"])
    for merged in _merged(current.filter(location_key__in=shared), cover):
        count(*merged)
    return {
        "findings": {
            "open": {s: sum(open_by_kind[k][s] for k in KINDS) for s in SEVERITIES},
            "by_kind": {k: {s: open_by_kind[k][s] for s in SEVERITIES} for k in KINDS},
            "exempted": sum(sum(c.values()) for c in exempted_by_kind.values()),
            "exempted_by_kind": {k: {s: exempted_by_kind[k][s] for s in SEVERITIES} for k in KINDS},
        },
        "capabilities": {"undeclared": sorted(capabilities)},
    }


def _merged(findings: QuerySet[Finding], cover: Cover) -> Iterator[tuple[str, str, bool, object]]:
    """(kind, severity, exempted, capability) of each finding that several sources report.

    The n-th finding of each run at one place (in id order) is one finding. Warden's own
    findings in it govern: a posted copy can never hide, triage or exempt what Warden found,
    and it only counts when Warden did not find it. The finding is open when a governing member
    is open and not exempted, at the highest severity any open, unexempted member gives it;
    exempted when a governing member is open but exempted; else it is not counted."""
    fields = ("location_key", "check_run_id", "check_run__origin", "kind", "severity", "fingerprint", "triage")
    rows = list(findings.values(*fields, "data__capability").order_by("location_key", "check_run_id", "pk"))
    for members in places(rows, key=lambda row: (row["location_key"], row["check_run_id"])):
        governing = [m for m in members if m["check_run__origin"] == RunOrigin.INTERNAL] or members
        alive = [m for m in members if m["triage"] in OPEN_TRIAGE and m["fingerprint"] not in cover.fingerprints]
        leaders = [m for m in alive if m in governing]
        if leaders:
            lead = _most_severe(leaders)
            yield lead["kind"], _most_severe(alive)["severity"], False, lead["data__capability"]
            continue
        exempted = [m for m in governing if m["triage"] in OPEN_TRIAGE]
        if exempted:
            lead = _most_severe(exempted)
            yield lead["kind"], lead["severity"], True, lead["data__capability"]


def _most_severe(rows: list[dict]) -> dict:
    return min(rows, key=lambda row: SEVERITY_RANK[row["severity"]])


def _performance(runs: list) -> dict:
    """The latest performance harness run's KPIs; ``measured: false`` and zeros without one."""
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


def _compliance(version: PluginVersion) -> dict:
    """The compliance review of the current round: its controls' results and the sign-off."""
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
