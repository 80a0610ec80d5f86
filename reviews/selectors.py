"""Reads on stage reviews, filtered by what the user may see."""

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

from django.contrib.auth.models import User
from django.db.models import Case, Count, F, Min, Q, QuerySet, Value, When
from django.utils import timezone
from guardian.shortcuts import get_objects_for_user

from governance.models import StageKind
from governance.selectors import audit_events_for
from submissions.models import PluginVersion, VersionStatus
from submissions.selectors import organisations_of, plugins_visible_to, versions_visible_to

from .kpis import describe_change
from .models import (
    OPEN,
    RUN_ACTIVE,
    SEVERITY_RANK,
    Annotation,
    CheckRun,
    Feedback,
    Finding,
    PerformanceMetric,
    ReviewStatus,
    RunOrigin,
    RunStatus,
    StageReview,
    ThreatModel,
)
from .performance import KPIS


def reviews_assigned_to_groups_of(*, user: User) -> QuerySet[StageReview]:
    """The stage reviews the user's groups hold the review permission on."""
    return get_objects_for_user(user, "reviews.review_stagereview", klass=StageReview, accept_global_perms=False)


def versions_reviewed_by_groups_of(*, user: User) -> QuerySet:
    """The ids of the versions whose stages the user's groups review: the ``versions_visible``
    hook of submissions.selectors.versions_visible_to (reviews/apps.py)."""
    return reviews_assigned_to_groups_of(user=user).values("version_id")


def stage_reviews_visible_to(*, user: User) -> QuerySet[StageReview]:
    if user.has_perm("reviews.view_stagereview"):
        return StageReview.objects.all()
    return StageReview.objects.filter(
        Q(pk__in=reviews_assigned_to_groups_of(user=user).values("pk"))
        | Q(version__plugin__in=plugins_visible_to(user=user))
    )


def open_reviews_assigned_to(*, user: User) -> QuerySet[StageReview]:
    return (
        StageReview.objects.filter(assignee=user, status__in=OPEN)
        .select_related("stage", "version__plugin__organisation")
        .order_by("due_at")
    )


def overdue_reviews_visible_to(*, user: User) -> QuerySet[StageReview]:
    return (
        stage_reviews_visible_to(user=user)
        .filter(status__in=OPEN, due_at__lt=timezone.now())
        .select_related("stage", "assignee", "version__plugin__organisation")
        .order_by("due_at")
    )


def check_runs_visible_to(*, user: User) -> QuerySet[CheckRun]:
    return CheckRun.objects.filter(version__in=versions_visible_to(user=user))


def findings_visible_to(*, user: User) -> QuerySet[Finding]:
    return Finding.objects.filter(version__in=versions_visible_to(user=user))


def latest_runs(runs: Iterable[CheckRun]) -> list:
    """Of several runs of the same check (earlier rounds, re-matches, re-posted reports of
    one tool by one poster), only the newest speaks for the version now: an author's report
    does not replace a reviewer's. ``runs`` in any order."""
    latest: dict[tuple[str, str, int | None], object] = {}
    for run in sorted(runs, key=lambda r: r.pk):
        if run.origin == RunOrigin.EXTERNAL and run.status not in (RunStatus.SUCCEEDED, RunStatus.FAILED):
            continue  # a report still importing speaks once imported; a refused one never does
        latest[(run.check_key, run.tool, run.posted_by_id)] = run
    return list(latest.values())


def revision_runs(*, version: PluginVersion) -> list[CheckRun]:
    """Every run of the version's current revision (a fixed archive's runs replace the old one's,
    posted reports included), in the fields ``latest_runs`` and the facts read."""
    runs = CheckRun.objects.filter(version_id=version.pk, revision=version.revision)
    return list(runs.only("pk", "check_key", "tool", "status", "posted_by", "origin"))


def current_runs(*, version: PluginVersion) -> list[CheckRun]:
    """The runs that speak for the version now: the latest of each check and tool."""
    return latest_runs(revision_runs(version=version))


def importing_reports(runs: Iterable[CheckRun]) -> list[CheckRun]:
    """Of ``runs``, the posted reports a worker has yet to import: the gate waits for them."""
    return [run for run in runs if run.origin == RunOrigin.EXTERNAL and run.status in RUN_ACTIVE]


def finding_counts(*, version: PluginVersion) -> list[dict]:
    """Open, new and total findings of the version's latest runs by severity, most severe first."""
    current = [r.pk for r in current_runs(version=version)]
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
    rows = []
    for metric in run.metrics.select_related("baseline_version"):
        kpi = KPIS.get(metric.kpi)
        bound = "≥" if kpi and kpi.higher_is_better else "≤"
        change, meaning = describe_change(kpi, metric.change_percent) if metric.change_percent is not None else ("", "")
        rows.append(
            {
                "kpi": kpi.title if kpi else metric.kpi,
                "threads": metric.concurrency,
                "unit": metric.unit,
                "budget": f"{bound} {metric.budget:g}" if metric.budget is not None else "",
                "value": f"{metric.value:g}",
                "baseline": f"{metric.baseline_value:g}" if metric.baseline_value is not None else "",
                "change": change,
                "change_meaning": meaning,
                "within_budget": metric.within_budget,
                "regressed": metric.regressed,
            }
        )
    return {"run": run, "rows": rows, "baseline": run.summary.get("baseline"), "budget": run.summary.get("budget")}


def versions_awaiting_decision_of(*, user: User) -> QuerySet[PluginVersion]:
    """For the board's home: the versions waiting on its decision, soonest due first. Versions of
    the user's own organisations are left out (nobody decides their own submission)."""
    if not (user.is_active and user.has_perm("submissions.decide_pluginversion")):
        return PluginVersion.objects.none()
    deciding = Q(stage_reviews__stage__kind=StageKind.DECISION, stage_reviews__status__in=OPEN)
    return (
        PluginVersion.objects.filter(status=VersionStatus.AWAITING_DECISION)
        .exclude(plugin__organisation__in=organisations_of(user=user))
        .annotate(decision_due=Min("stage_reviews__due_at", filter=deciding))
        .select_related("plugin__organisation")
        .order_by(F("decision_due").asc(nulls_last=True), "pk")
    )


# Warden's own findings ("internal" runs) before those of posted reports ("external" sorts first).
WARDEN_FIRST = Case(When(check_run__origin=RunOrigin.INTERNAL, then=Value(0)), default=Value(1))


T = TypeVar("T")


def places(findings: Sequence[T], *, key: Callable[[T], tuple[str, int]]) -> list[list[T]]:
    """The findings as the rating counts them, one list per finding: at a place (``location_key``)
    that several runs report, the n-th finding of each run (in the order given) is one finding
    with several sources; every other finding stands alone. ``key`` gives (location_key, run id).
    The fact document (decisions/facts.py) and the dossier both group by this."""
    runs_at: dict[str, set[int]] = defaultdict(set)
    for finding in findings:
        location, run = key(finding)
        if location:
            runs_at[location].add(run)
    grouped: dict[tuple[str, int], list[T]] = {}
    seen: Counter[tuple[str, int]] = Counter()
    for n, finding in enumerate(findings):
        location, run = key(finding)
        if len(runs_at.get(location, ())) < 2:
            grouped[("", n)] = [finding]
            continue
        grouped.setdefault((location, seen[(location, run)]), []).append(finding)
        seen[(location, run)] += 1
    return list(grouped.values())


def finding_sources(*, finding: Finding) -> list[Finding]:
    """The current findings of the version at this finding's place (its ``location_key``), this
    one included: one finding as each source reporting it (Warden's checks, posted reports)
    sees it. Computed, not stored: a re-run or a newer report changes the sources by itself."""
    if not finding.location_key:
        return [finding]
    return list(
        Finding.objects.filter(
            check_run__in=[run.pk for run in current_runs(version=finding.version)], location_key=finding.location_key
        )
        .select_related("check_run__posted_by")
        .order_by(WARDEN_FIRST, "pk")
    )


def also_reported_by(*, run: CheckRun) -> dict[str, int]:
    """For a posted report: how many of its places each other current source of the version
    also reports (Warden's checks by key; other posted reports by key and tool). The rating
    counts each such place once."""
    others = [other.pk for other in current_runs(version=run.version) if other.pk != run.pk]
    places = run.findings.exclude(location_key="").values("location_key")
    rows = (
        Finding.objects.filter(check_run__in=others, location_key__in=places)
        .values("check_run__check_key", "check_run__origin", "check_run__tool")
        .annotate(places=Count("location_key", distinct=True))
        .order_by()
    )
    also = {
        row["check_run__check_key"]
        if row["check_run__origin"] == RunOrigin.INTERNAL
        else f"{row['check_run__check_key']} ({row['check_run__tool']})": row["places"]
        for row in rows
    }
    return dict(sorted(also.items()))


def threat_models_visible_to(*, user: User) -> QuerySet[ThreatModel]:
    return ThreatModel.objects.filter(version__in=versions_visible_to(user=user))


def performance_metrics_visible_to(*, user: User) -> QuerySet[PerformanceMetric]:
    return PerformanceMetric.objects.filter(version__in=versions_visible_to(user=user))


def feedback_visible_to(*, user: User) -> QuerySet[Feedback]:
    """Each user's own feedback; all of it for those who read it (platform admins, the board)."""
    if user.has_perm("reviews.view_feedback"):
        return Feedback.objects.all()
    return Feedback.objects.filter(user=user)


def threads_awaiting_author(*, version: PluginVersion) -> QuerySet[Annotation]:
    """Open threads the reviewers addressed to the authors of ``version``: what a
    resubmission may answer."""
    return (
        Annotation.objects.filter(version=version, parent__isnull=True, to_author=True, resolved_at__isnull=True)
        .select_related("author")
        .order_by("created_at", "pk")
    )


# -- the home page of each role (config/admin_site.py) --------------------------------------


def open_reviews_of(*, user: User) -> QuerySet[StageReview]:
    """The open reviews ``user`` holds, overdue ones first, then soonest due; ``overdue`` is
    annotated so the page need not compare times per row."""
    overdue = Case(When(due_at__lt=timezone.now(), then=Value(True)), default=Value(False))
    return (
        StageReview.objects.filter(assignee=user, status__in=OPEN)
        .annotate(overdue=overdue)
        .select_related("stage", "version__plugin__organisation")
        .order_by("-overdue", F("due_at").asc(nulls_last=True), "pk")
    )


def unassigned_reviews_visible_to(*, user: User, own_groups: bool = False) -> QuerySet[StageReview]:
    """Started reviews nobody holds (assignment found nobody, or the reviewer released it),
    of the stages people work: the board decides its stage together and is never assigned.
    ``own_groups``: only those of the stages the user's groups review."""
    reviews = reviews_assigned_to_groups_of(user=user) if own_groups else stage_reviews_visible_to(user=user)
    return (
        reviews.filter(status=ReviewStatus.IN_PROGRESS, assignee__isnull=True)
        .exclude(stage__kind=StageKind.DECISION)
        .select_related("stage", "version__plugin__organisation")
        .order_by(F("due_at").asc(nulls_last=True), "pk")
    )


def unassigned_counts_by_stage(*, user: User, own_groups: bool = False) -> list[dict]:
    """How many reviews wait unassigned, per stage (``stage_id``, ``stage__name``, ``count``)."""
    reviews = unassigned_reviews_visible_to(user=user, own_groups=own_groups)
    return list(
        reviews.order_by()
        .values("stage_id", "stage__name", "stage__order")
        .annotate(count=Count("pk"))
        .order_by("stage__order", "stage__name")
    )


def errored_runs_visible_to(*, user: User) -> QuerySet[CheckRun]:
    """Check runs that could not run and still hold up an open review (a run of a closed
    round, or of a stage that was decided anyway, holds up nothing), newest first."""
    return (
        check_runs_visible_to(user=user)
        .filter(status=RunStatus.ERRORED, stage_review__status__in=OPEN)
        .select_related("stage_review__stage", "version__plugin__organisation")
        .order_by(F("finished_at").desc(nulls_last=True), "-pk")
    )


def breached_reviews_visible_to(*, user: User) -> QuerySet[StageReview]:
    """Open reviews past their due time: their SLA is breached. The sweep (reviews/sla.py)
    records the breach and escalates within minutes; ``sla_breach`` is that record, if made."""
    return overdue_reviews_visible_to(user=user).select_related("sla_breach")


def version_audit_visible_to(*, version: PluginVersion, user: User) -> QuerySet:
    """The audit events of ``version`` and of each of its stage reviews ``user`` may see, newest
    first. The plugin's authors do not learn of the reviewers' internal threads: the events of
    annotations not addressed to them are left out for members of the organisation."""
    reviews = list(stage_reviews_visible_to(user=user).filter(version_id=version.pk).only("pk"))
    events = audit_events_for(targets=[version, *reviews])
    if organisations_of(user=user).filter(pk=version.plugin.organisation_id).exists():
        events = events.exclude(action="annotation.add", data__to_author=False)
    return events
