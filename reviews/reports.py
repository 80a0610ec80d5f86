"""External reports: a CI job posts SARIF, CycloneDX, pip-audit or performance JSON about a version.

Each report becomes a CheckRun of origin *external* with its findings, in one transaction.
A CycloneDX SBOM's PyPI components are matched against the advisory store; its VEX
statements set the triage of matching findings, on this report and on the version's
existing findings, each change with its trail row. A performance report's figures become
the run's metrics, judged against the version's budget like the harness's own.

Posting the same report again is idempotent: when the poster's current run of that format and
tool has the same digest (the report's bytes and what Warden derived from them), that run is
the answer and nothing is stored, not even an audit row.

A SARIF log larger than ``WARDEN_REPORT_INLINE_BYTES`` is not parsed in the request
(``report_queue``): its bytes are stored, a *queued* run is the answer, and a worker imports it
(``report_import``) streaming, in batches that are each their own short transaction, so neither
the web process's memory nor the database's write lock grows with the report. Until the run has
finished, the poster's previous report of that tool is what counts, and the gate waits for it.
A report the worker refuses ends as an *errored* run, with why, and counts for nothing.
"""

import hashlib
from dataclasses import dataclass, replace

from django.conf import settings
from django.core.files import File
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

from governance.audit import audit_record
from governance.errors import PermissionRefused, TransitionRefused, ValidationFailed
from submissions.models import PluginVersion, VersionStatus

from .advisories.store import match_findings, match_requirements
from .checks.engine import claim_run, store_findings
from .checks.queue import enqueue_after_commit
from .findings_data import FindingData, ReportError
from .importers import STREAMED, ParsedReport, parse_report, stream_report
from .importers.vex import apply_vex
from .models import (
    RUN_ACTIVE,
    CheckRun,
    Finding,
    FindingTriage,
    PerformanceMetric,
    RunOrigin,
    RunStatus,
    report_path,
)
from .performance import Budget, Measured, budget_for, judge
from .selectors import reviews_assigned_to_groups_of
from .services import can_triage

FORMATS = ("sarif", "cyclonedx", "pip-audit", "performance")
CLOSED = [
    VersionStatus.WITHDRAWN,
    VersionStatus.REJECTED,
    VersionStatus.REVOKED,
    VersionStatus.ROLLED_BACK,
    VersionStatus.SUPERSEDED,
]
FAIL_AT = ("critical", "high")


@dataclass(frozen=True)
class AttachedReport:
    run: CheckRun
    unchanged: bool  # the poster's current run already was this report: nothing was stored


def report_attach(*, version: PluginVersion, format: str, content: bytes, actor, filename: str = "") -> AttachedReport:
    """Parse (outside any transaction), then store the run, its findings and its report; or,
    for a report identical to the poster's current one of that tool, return that run unchanged."""
    _check_format(format)
    _check_poster(version, actor)
    try:
        parsed = parse_report(format, content, max_bytes=settings.WARDEN_MAX_REPORT_BYTES)
    except ReportError as exc:
        raise _unreadable(format, exc) from None
    findings = _with_dependency_matches(parsed)
    if parsed.metrics:
        budget = budget_for(category=version.plugin.category)
        measured = _measured(parsed, budget)
        findings += judge(measured, budget, baseline_label="")  # no baseline: nothing is a regression
    else:
        measured = []
    digest = _digest(content, findings[len(parsed.findings) :], measured)
    stored = None
    try:
        with transaction.atomic(durable=True):
            version = _open_version(version)
            vex_changes = _vex_changes(version, parsed, actor)
            current = _current_run(version, parsed.tool, format, actor)
            if current is not None and current.report_digest == digest and not vex_changes:
                return AttachedReport(run=current, unchanged=True)
            run = _create_run(version, parsed, format, actor)
            run.report_digest = digest
            counts = store_findings(run=run, findings=findings)
            PerformanceMetric.objects.bulk_create(_metric_row(run, item) for item in measured)
            run.report.save(filename or f"{format}.json", ContentFile(content), save=False)
            stored = run.report.name
            if any(severity in FAIL_AT for severity in counts):
                run.fail()
            else:
                run.succeed()
            run.finished_at, run.progress = timezone.now(), 100
            run.summary = {**parsed.summary, "findings": counts, "components": len(parsed.components)}
            run.save()
            triaged = _apply_vex(version, vex_changes, actor)
            audit_record(
                actor=actor,
                action="report.attach",
                target=version,
                data={
                    "run": run.pk,
                    "format": format,
                    "tool": parsed.tool,
                    "findings": sum(counts.values()),
                    "vex_triaged": triaged,
                },
            )
    except BaseException:
        if stored:
            CheckRun.report.field.storage.delete(stored)
        raise
    return AttachedReport(run=run, unchanged=False)


def _digest(content: bytes, derived: list[FindingData], measured: list[Measured]) -> str:
    """The report's bytes, plus what Warden added to them from its own data (advisory matches
    of an SBOM, the budget each figure is judged against): the same SBOM posted after new
    advisories arrived is a new report."""
    digest = hashlib.sha256(content)
    for finding in derived:
        digest.update(b"\x1e" + repr(finding).encode())
    for item in measured:
        digest.update(b"\x1d" + repr((item.kpi, item.concurrency, item.budget)).encode())
    return digest.hexdigest()


def report_queue(*, version: PluginVersion, format: str, upload: File, actor, filename: str = "") -> AttachedReport:
    """Store a large report for a worker to import: 202 with a *queued* run (nothing of it
    counts yet), or, when this poster's current run of that tool already is this log, that run
    unchanged. The bytes are copied to storage in chunks, outside any transaction."""
    _check_format(format)
    if format not in STREAMED:
        raise ValueError(f"{format} reports are imported in their request")
    _check_poster(version, actor)
    upload.seek(0)
    digest = hashlib.file_digest(upload, "sha256").hexdigest()  # a SARIF log's digest is its bytes'
    same = (
        CheckRun.objects.filter(
            version=version,
            revision=version.revision,
            check_key=f"external.{format}",
            posted_by=actor,
            report_digest=digest,
        )
        .exclude(status__in=[*RUN_ACTIVE, RunStatus.ERRORED])
        .order_by("-pk")
        .first()
    )
    if same is not None and same == _current_run(version, same.tool, format, actor):
        return AttachedReport(run=same, unchanged=True)
    storage = CheckRun.report.field.storage
    upload.seek(0)
    stored = storage.save(report_path(CheckRun(version=version), filename or f"{format}.json"), upload)
    try:
        with transaction.atomic(durable=True):
            version = _open_version(version)
            run = CheckRun.objects.create(
                version=version,
                revision=version.revision,
                check_key=f"external.{format}",
                origin=RunOrigin.EXTERNAL,
                posted_by=actor,
                report=stored,
                report_digest=digest,
            )
            audit_record(actor=actor, action="report.queue", target=version, data={"run": run.pk, "format": format})
            enqueue_after_commit(run)
    except BaseException:
        storage.delete(stored)
        raise
    return AttachedReport(run=run, unchanged=False)


def report_import(*, run_id: int) -> CheckRun | None:
    """The worker's half of ``report_queue``: stream the stored report into findings, a batch
    per transaction. Safe to run again: a killed attempt's rows are deleted first. A refused
    report (or a version closed meanwhile) ends the run *errored*, with why, and no findings."""
    run = claim_run(run_id)
    if run is None:
        return None
    Finding.objects.filter(check_run=run).delete()  # what a killed attempt stored
    format = run.check_key.removeprefix("external.")
    try:
        with run.report.open("rb") as file:
            streamed = stream_report(format, file)
            counts = store_findings(run=run, findings=streamed.findings, each_batch=transaction.atomic)
        with transaction.atomic():
            version = _open_version(PluginVersion(pk=run.version_id))
            run = CheckRun.objects.select_for_update().get(pk=run.pk)
            run.tool, run.tool_version = streamed.report.tool[:100], streamed.report.tool_version[:64]
            if any(severity in FAIL_AT for severity in counts):
                run.fail()
            else:
                run.succeed()
            run.finished_at, run.progress = timezone.now(), 100
            run.summary = {**streamed.summary(counts), "findings": counts, "components": 0}
            run.save()
            audit_record(
                actor=run.posted_by,
                action="report.attach",
                target=version,
                data={"run": run.pk, "format": format, "tool": run.tool, "findings": sum(counts.values())},
            )
    except (ReportError, TransitionRefused) as exc:
        _refuse(run.pk, str(exc))
    return CheckRun.objects.get(pk=run.pk)


def _refuse(run_id: int, why: str) -> None:
    with transaction.atomic():
        run = CheckRun.objects.select_for_update().get(pk=run_id)
        Finding.objects.filter(check_run=run).delete()
        run.error_out()
        run.error, run.finished_at = f"The report was not imported: {why}", timezone.now()
        run.save()


def _open_version(version: PluginVersion) -> PluginVersion:
    """The version, locked, if it still takes reports."""
    version = PluginVersion.objects.select_for_update().get(pk=version.pk)
    if version.status in CLOSED:
        raise TransitionRefused(f"{version} is {version.get_status_display().lower()}; it takes no reports.")
    return version


def _check_format(format: str) -> None:
    if format not in FORMATS:
        raise ValidationFailed(
            f"Unknown report format {format!r}.",
            code="invalid_format",
            errors=[{"field": "format", "code": "invalid_format", "message": f"One of: {', '.join(FORMATS)}."}],
        )


def _unreadable(format: str, exc: ReportError) -> ValidationFailed:
    return ValidationFailed(
        f"The {format} report cannot be read: {exc}",
        code="invalid_report",
        errors=[{"field": "report", "code": "invalid_report", "message": str(exc)}],
    )


def _current_run(version: PluginVersion, tool: str, format: str, actor) -> CheckRun | None:
    """The run that speaks for this poster's reports of this tool now (``latest_runs``' key):
    of the version's current revision, finished (an import still running does not speak yet)."""
    return (
        CheckRun.objects.filter(
            version=version,
            revision=version.revision,
            check_key=f"external.{format}",
            tool=tool[:100],
            posted_by=actor,
            status__in=[RunStatus.SUCCEEDED, RunStatus.FAILED],
        )
        .order_by("-pk")
        .first()
    )


def _measured(parsed: ParsedReport, budget: Budget) -> list[Measured]:
    """A performance report's figures with the budget that applies to each (budgets hold at
    the budget's peak concurrency, or for KPIs without one)."""
    return [
        Measured(
            kpi=m["kpi"],
            value=m["value"],
            concurrency=m["concurrency"],
            budget=budget.limits.get(m["kpi"]) if m["concurrency"] in (None, budget.peak_threads) else None,
        )
        for m in parsed.metrics
    ]


def _metric_row(run: CheckRun, item: Measured) -> PerformanceMetric:
    return PerformanceMetric(
        check_run=run,
        version_id=run.version_id,
        kpi=item.kpi,
        concurrency=item.concurrency,
        value=item.value,
        unit=item.definition.unit,
        budget=item.budget,
        within_budget=item.within_budget,
    )


def _check_poster(version: PluginVersion, actor) -> None:
    """Authors (their CI) and the version's reviewers may post; others may not."""
    allowed = (
        actor.has_perm("submissions.submit_plugin", version.plugin)
        or actor.has_perm("reviews.waive_stagereview")
        or reviews_assigned_to_groups_of(user=actor).filter(version=version).exists()
    )
    if not allowed:
        raise PermissionRefused(f"{actor} may not post reports about {version}.")


def _create_run(version: PluginVersion, parsed: ParsedReport, format: str, actor) -> CheckRun:
    run = CheckRun(
        version=version,
        revision=version.revision,
        check_key=f"external.{format}",
        origin=RunOrigin.EXTERNAL,
        posted_by=actor,
        tool=parsed.tool[:100],
        tool_version=parsed.tool_version[:64],
    )
    run.start()
    run.started_at = timezone.now()
    run.save()
    return run


def _with_dependency_matches(parsed: ParsedReport) -> list[FindingData]:
    """An SBOM lists components, not problems: match its PyPI components against the
    advisory store, then let its VEX statements triage what was found."""
    findings = list(parsed.findings)
    pins = [f"{c.name}=={c.version}" for c in parsed.components if c.ecosystem == "PyPI" and c.version]
    if pins:
        matches, _unpinned = match_requirements(requirements=pins)
        findings += [replace(f, path="") for f in match_findings(matches)]
    return apply_vex(findings, parsed.vex)


def _vex_changes(version: PluginVersion, parsed: ParsedReport, actor) -> list[tuple[Finding, FindingData]]:
    """The findings already on the version whose triage the report's VEX changes, with the
    verdict: only those the poster may triage themselves, so a vendor's CI cannot dismiss what
    Warden's reviewers found. Matching is done in memory first; permission is checked only for
    the findings a verdict would change. (A re-posted VEX that would change something is not
    "unchanged".)"""
    if not parsed.vex:
        return []
    existing = list(
        Finding.objects.select_for_update(of=("self",))
        .select_related("version__plugin", "check_run__stage_review")
        .filter(version=version)
    )
    as_data = [
        FindingData(rule_id=f.rule_id, title=f.title, severity=f.severity, kind=f.kind, data=f.data) for f in existing
    ]
    return [
        (finding, verdict)
        for finding, verdict in zip(existing, apply_vex(as_data, parsed.vex), strict=True)
        if verdict.triage and verdict.triage != finding.triage and can_triage(actor=actor, finding=finding)
    ]


def _apply_vex(version: PluginVersion, changes: list[tuple[Finding, FindingData]], actor) -> int:
    """Record each change with its trail row."""
    for finding, verdict in changes:
        FindingTriage.objects.create(
            finding=finding,
            version=version,
            fingerprint=finding.fingerprint,
            actor=actor,
            from_state=finding.triage,
            to_state=verdict.triage,
            reason=f"VEX: {verdict.triage_reason}",
        )
        finding.triage = verdict.triage
        finding.save(update_fields=["triage"])
    return len(changes)
