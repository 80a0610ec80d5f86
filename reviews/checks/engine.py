"""Running checks: queue on stage start, execute in a worker, store results idempotently.

1. ``queue_stage_checks`` (reviews/checks/queue.py, inside the transaction that starts a
   stage) creates one queued CheckRun per check the stage declares and enqueues it after commit.
2. ``check_run_execute`` (in a django-q2 worker) claims the run, unpacks the artifact once
   per machine, runs the check outside any transaction, then replaces the run's findings
   and records the verdict in one transaction. A worker that dies leaves the run
   *running*; ``check_runs_requeue_stale`` (scheduled) hands it out again, and the replace
   makes sure exactly one set of findings survives.
3. When every run of an auto-pass stage has succeeded, the stage passes as the system. When a
   security stage's run finishes, what the version adds against the last approved version is
   flagged for human review (reviews/escalation.py); a flagged stage never passes on its own.
"""

import contextlib
import hashlib
import json
import logging
import shutil
import tempfile
import traceback
from collections.abc import Callable, Iterable
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import DataError, IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from governance import hooks
from governance.models import StageKind
from reviews.advisories.matching import normalise_name, parse_requirement
from reviews.escalation import escalation_refresh
from reviews.findings_data import FindingData
from reviews.models import (
    RUN_ACTIVE,
    CheckRun,
    Finding,
    FindingTriage,
    PerformanceMetric,
    RunOrigin,
    RunStatus,
)
from reviews.notices import notify_check_errored
from reviews.services import stage_auto_pass
from submissions.intake import extract_artifact
from submissions.models import STANDING_APPROVALS, PluginVersion, VersionStatus

from . import REGISTRY, CheckContext, CheckOutcome
from .queue import enqueue, enqueue_after_commit

logger = logging.getLogger(__name__)
BATCH = 2000
APPROVED_STATES = [VersionStatus.APPROVED, VersionStatus.DEPLOYED, VersionStatus.SUPERSEDED, VersionStatus.ROLLED_BACK]


def check_run_execute(*, run_id: int) -> CheckRun | None:
    run = claim_run(run_id)
    if run is None:
        return None
    spec = REGISTRY.get(run.check_key)
    try:
        if spec is None:
            raise LookupError(f"No check is registered as {run.check_key!r}.")
        version = PluginVersion.objects.get(pk=run.version_id)
        context = CheckContext(
            version_id=version.pk,
            plugin_id=version.plugin_id,
            manifest=version.manifest,
            root=artifact_tree(version),
            progress=lambda pct: _progress(run.pk, pct),
        )
        outcome = spec.run(context)
    except Exception as exc:  # the check itself broke: record why, let a reviewer re-run it
        logger.exception("Check run %s errored", run_id)
        _record_error(run.pk, exc)
    else:
        record_outcome(run=run, outcome=outcome)
    return after_run(run_id=run.pk)


def claim_run(run_id: int) -> CheckRun | None:
    """Take a queued (or, after a killed worker, running) run, a check or a posted report's
    import: None when it already finished (a duplicate delivery), or when it is given up after
    ``WARDEN_CHECK_MAX_ATTEMPTS`` or its review closed (errored, and someone told)."""
    with transaction.atomic():
        run = CheckRun.objects.select_for_update(of=("self",)).select_related("stage_review").filter(pk=run_id).first()
        if run is None or run.status not in RUN_ACTIVE:
            return None  # already finished: a duplicate delivery
        review = run.stage_review
        if run.attempts >= settings.WARDEN_CHECK_MAX_ATTEMPTS or (review is not None and not review.is_open):
            run.error_out()
            run.error = (
                f"Gave up after {run.attempts} attempts."
                if run.attempts
                else "Not run: the stage review closed before the check started."
            )
            run.finished_at = timezone.now()
            run.save()
            notify_check_errored(run=run)
            return None
        run.start()
        run.started_at = timezone.now()
        run.save()
    return run


def record_outcome(*, run: CheckRun, outcome: CheckOutcome) -> None:
    """Replace the run's findings and record its verdict, all or nothing.

    Findings that come back with the same fingerprint keep their triage, plan and trail:
    a re-run must not undo a reviewer's judgement. A database refusal of the results (bad
    data from a tool) errors the run with the reason; anything else (a lost worker)
    propagates, and the run is retried.
    """
    stored = None
    try:
        with transaction.atomic():
            run = CheckRun.objects.select_for_update().get(pk=run.pk)
            if run.status != RunStatus.RUNNING:
                return
            previous_report = run.report.name
            counts = replace_findings(run=run, findings=outcome.findings)
            run.metrics.all().delete()
            PerformanceMetric.objects.bulk_create(
                PerformanceMetric(check_run=run, version_id=run.version_id, **metric) for metric in outcome.metrics
            )
            if outcome.report:
                run.report.save(outcome.report_name, ContentFile(outcome.report), save=False)
                stored = run.report.name
            run.succeed() if outcome.passed else run.fail()
            run.finished_at, run.progress = timezone.now(), 100
            run.summary = {**outcome.summary, "findings": counts}
            run.tool_version = outcome.tool_version or run.tool_version
            run.save()
            if previous_report and stored:
                transaction.on_commit(lambda: run.report.storage.delete(previous_report))
    except (DataError, IntegrityError) as exc:
        if stored:
            run.report.storage.delete(stored)
        _record_error(run.pk, exc)
    except BaseException:
        if stored:
            run.report.storage.delete(stored)
        raise


def replace_findings(*, run: CheckRun, findings: Iterable[FindingData]) -> dict[str, int]:
    """Insert the new set, carry triage over by fingerprint, move the trail, drop the old set.
    A re-match (``replaces``) keeps the triage of the run it matches again, whose findings
    and trail stay where they are: the evidence of the approval that rested on them."""
    fields = ("pk", "fingerprint", "triage", "plan", "plan_due")
    old = {f.fingerprint: f for f in run.findings.only(*fields)}
    newest_old = max((f.pk for f in old.values()), default=0)
    carried = old or {f.fingerprint: f for f in Finding.objects.filter(check_run_id=run.replaces_id).only(*fields)}
    counts = store_findings(run=run, findings=findings, previous=carried)
    if old:
        fresh = dict(run.findings.filter(pk__gt=newest_old, fingerprint__in=list(old)).values_list("fingerprint", "pk"))
        for fingerprint, finding_id in fresh.items():
            FindingTriage.objects.filter(finding_id=old[fingerprint].pk).update(finding_id=finding_id)
        run.findings.filter(pk__lte=newest_old).delete()  # their trail rows stay, detached
    return counts


def store_findings(
    *,
    run: CheckRun,
    findings: Iterable[FindingData],
    previous: dict | None = None,
    each_batch: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
) -> dict[str, int]:
    """Insert in batches, each under ``each_batch()`` (a streamed report's import: its own
    transaction); mark what the last approved version already had as carried over."""
    known = carried_fingerprints(version_id=run.version_id)
    counts: dict[str, int] = {}
    batch: list[Finding] = []
    reasons: list[str] = []
    for data in findings:
        counts[data.severity] = counts.get(data.severity, 0) + 1
        finding = _finding(run, data, known)
        earlier = (previous or {}).get(finding.fingerprint)
        if earlier is not None and not data.triage:
            finding.triage, finding.plan, finding.plan_due = earlier.triage, earlier.plan, earlier.plan_due
            reasons.append("")
        else:
            reasons.append(data.triage_reason or "Set by the report.")
        batch.append(finding)
        if len(batch) >= BATCH:
            with each_batch():
                _insert(batch, reasons, previous or {})
            batch, reasons = [], []
    with each_batch():
        _insert(batch, reasons, previous or {})
    return counts


def _insert(batch: list[Finding], reasons: list[str], previous: dict) -> None:
    """Bulk insert; a triage the source itself decided (VEX) gets its trail row too."""
    Finding.objects.bulk_create(batch)
    FindingTriage.objects.bulk_create(
        FindingTriage(
            finding=finding,
            version_id=finding.version_id,
            fingerprint=finding.fingerprint,
            actor=None,
            from_state="open",
            to_state=finding.triage,
            reason=reason,
        )
        for finding, reason in zip(batch, reasons, strict=True)
        if finding.triage != "open" and reason
    )


def _finding(run: CheckRun, data: FindingData, known: set[str]) -> Finding:
    fingerprint = data.fingerprint
    if run.origin == RunOrigin.EXTERNAL:
        # The poster chose the tool, rule, path and code: in a namespace of their own, a posted
        # finding can never share a fingerprint (nor an exemption) with one Warden found.
        fingerprint = hashlib.sha256(f"external\x1f{fingerprint}".encode()).hexdigest()
    return Finding(
        check_run=run,
        version_id=run.version_id,
        kind=data.kind,
        severity=data.severity,
        rule_id=_text(data.rule_id, 200),
        title=_text(data.title, 300),
        message=_text(data.message),
        path=_text(data.path, 500),
        line=data.line if data.line is not None and 0 < data.line < 2**31 else None,
        cwe=_text(data.cwe, 20),
        tool=_text(data.tool, 100),
        fingerprint=fingerprint,
        location_key=data.location_key,
        snippet=_text(data.snippet),
        data=_clean(data.data),
        carried_over=fingerprint in known,
        triage=data.triage or "open",
    )


def _text(value: str, limit: int | None = None) -> str:
    """Tools report what the plugin contains; PostgreSQL refuses NUL in text."""
    value = value.replace("\x00", "\ufffd")
    return value[:limit] if limit else value


def _clean(data: dict) -> dict:
    as_json = json.dumps(data, default=str)
    return json.loads(as_json.replace("\\u0000", "\\ufffd")) if "\\u0000" in as_json else data


def carried_fingerprints(*, version_id: int) -> set[str]:
    version = PluginVersion.objects.only("plugin_id").get(pk=version_id)
    previous = (
        PluginVersion.objects.filter(plugin_id=version.plugin_id, status__in=APPROVED_STATES)
        .exclude(pk=version_id)
        .order_by("-decided_at", "-pk")
        .values_list("pk", flat=True)
        .first()
    )
    if previous is None:
        return set()
    return set(Finding.objects.filter(version_id=previous).values_list("fingerprint", flat=True))


def _record_error(run_id: int, exc: BaseException) -> None:
    with transaction.atomic():
        run = CheckRun.objects.select_for_update().get(pk=run_id)
        if run.status != RunStatus.RUNNING:
            return
        run.error_out()
        run.error = "".join(traceback.format_exception_only(exc)).strip()[:4000]
        run.finished_at = timezone.now()
        run.save()
        notify_check_errored(run=run)


def _progress(run_id: int, percent: int) -> None:
    CheckRun.objects.filter(pk=run_id, status=RunStatus.RUNNING).update(progress=max(0, min(100, percent)))


def after_run(*, run_id: int) -> CheckRun:
    run = CheckRun.objects.select_related("stage_review__stage").get(pk=run_id)
    review = run.stage_review
    if review is not None and review.stage.kind == StageKind.SECURITY:
        escalation_refresh(review=review)  # what the version adds needs the checks' results
    if review is not None and review.stage.auto_pass:
        stage_auto_pass(review=review)
    hooks.fire(hooks.CHECK_FINISHED, run=run)  # decisions: a standing version is hunted again
    return run


DEPENDENCY_CHECK = "security.dependencies"
# Under review with a dependency match already run: matched again, so the board never decides on
# advisories older than the version's rating. A version whose match has not run yet reads the new ones.
UNDER_REVIEW = (VersionStatus.IN_REVIEW, VersionStatus.CHANGES_REQUESTED, VersionStatus.AWAITING_DECISION)


def check_runs_rematch_released(*, packages: Iterable[str] | None = None) -> int:
    """New or changed advisories: run the dependency match again for each standing version
    (approved, deployed, superseded) and each version under review that requires one of
    ``packages`` (all of them when None), so a newly disclosed vulnerability shows up where it
    runs and before the board decides. A new run replaces the current one (whose findings and
    report stay, the evidence of the approval) and keeps the triage given there, by
    fingerprint. When it finishes, decisions hunts a standing version again (the
    ``check_finished`` hook): a new violation opens a flag there."""
    wanted = None if packages is None else {normalise_name(name) for name in packages}
    count = 0
    versions = PluginVersion.objects.filter(status__in=[*STANDING_APPROVALS, *UNDER_REVIEW]).order_by("pk")
    for version_id, revision, status, manifest in versions.values_list("pk", "revision", "status", "manifest"):
        if wanted is not None and not wanted & required_packages(manifest):
            continue
        with transaction.atomic(durable=True):
            current = (
                CheckRun.objects.select_for_update()
                .filter(version_id=version_id, revision=revision, check_key=DEPENDENCY_CHECK, origin=RunOrigin.INTERNAL)
                .order_by("-pk")
                .first()
            )
            if current is None and status in UNDER_REVIEW:
                continue  # its review has not matched it yet: it will read the new advisories
            if current is not None and current.status in (RunStatus.QUEUED, RunStatus.RUNNING):
                continue  # it has not read the advisories yet: it will read the new ones
            run = CheckRun.objects.create(
                version_id=version_id, revision=revision, check_key=DEPENDENCY_CHECK, tool="osv", replaces=current
            )
            enqueue_after_commit(run)
        count += 1
    return count


def required_packages(manifest: dict) -> set[str]:
    """The normalised names of the pinned requirements in plugin.toml (what the match reads)."""
    requirements = (manifest.get("dependencies") or {}).get("requirements") or []
    return {pin.name for pin in map(parse_requirement, map(str, requirements)) if pin is not None}


def check_runs_requeue_stale() -> int:
    """Hand out again the runs whose worker died (still *running* long after starting) or
    whose task was lost before any worker took it (still *queued* long after creation)."""
    cutoff = timezone.now() - timedelta(seconds=settings.WARDEN_CHECK_STALE_SECONDS)
    stale = list(
        CheckRun.objects.filter(
            Q(status=RunStatus.RUNNING, started_at__lt=cutoff) | Q(status=RunStatus.QUEUED, created_at__lt=cutoff)
        ).only("pk", "origin")
    )
    for run in stale:
        enqueue(run, retry=True)
    return len(stale)


def artifact_tree(version: PluginVersion) -> Path:
    """The version's archive unpacked under WARDEN_WORK_DIR/trees/<sha256>, once per machine.

    Unpacked into a temporary sibling first and renamed into place, so a concurrent run
    never sees half a tree.
    """
    root = Path(settings.WARDEN_WORK_DIR) / "trees"
    tree = root / version.sha256
    if tree.is_dir():
        return tree
    root.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{version.sha256[:12]}-", dir=root))
    try:
        scratch.chmod(0o755)  # the sandbox user reads it
        with version.artifact.open("rb") as archive:
            extract_artifact(archive, version.artifact_name, scratch)
        with contextlib.suppress(OSError):  # another worker won the race; its tree is identical
            scratch.rename(tree)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return tree
