"""What the dossier shows, section by section, each in a fixed number of queries.

Every read goes through the selector that says what the reader may see (``visible_only`` and
the ``*_visible_to`` selectors), so the page shows an author, a reviewer of one stage and the
board each what they may see, exactly as the admin's lists do.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from django.contrib.auth.models import User
from django.db.models import Prefetch
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from compliance.models import AssessmentStatus, ControlAssessment, Evidence, EvidenceStatus, Result
from compliance.selectors import assessments_visible_to, evidence_visible_to
from decisions.facts import OPEN_TRIAGE
from decisions.models import Deployment
from governance.admin_base import visible_only
from governance.models import AuditEvent
from reviews.capabilities import CapabilityMatrix, capability_matrix
from reviews.collaboration import annotations_visible_to
from reviews.models import SEVERITY_RANK, Annotation, CheckRun, Finding, RunOrigin, StageReview, ThreatModel, Triage
from reviews.selectors import (
    current_runs,
    findings_visible_to,
    latest_harness_run,
    performance_table,
    places,
    threat_models_visible_to,
    version_audit_visible_to,
)
from reviews.services import can_triage
from submissions.diff import Changes, base_revision_for, head_revision_for, revision_changes
from submissions.models import PluginVersion
from submissions.selectors import versions_visible_to

MAX_AUDIT_EVENTS = 200
TRIAGE_CHOICES = [(t.value, t.label) for t in Triage]
RESULT_CHOICES = [(r.value, r.label) for r in Result if r != Result.PENDING]
EVIDENCE_CHOICES = [("accept", "Accept"), ("reject", "Reject")]


@dataclass
class FindingRow:
    """One place with its finding and sources, and the bits of HTML every row repeats, made
    here once rather than by template tags per row (the page lists hundreds)."""

    finding: Finding
    sources: list[Finding]  # every current source reporting the place, Warden's first
    can_triage: bool
    admin_url: str
    where: SafeString  # path:line, linked to the line in the code browser
    sources_text: str
    triage_options: SafeString


def _finding_row(lead: Finding, sources: list[Finding], can: bool, urls: "RowUrls") -> FindingRow:
    place = f"{lead.path}:{lead.line}" if lead.line else lead.path
    anchor = f"#L{lead.line}" if lead.line else ""
    where = format_html('<a href="{}{}{}">{}</a>', urls.code, quote(lead.path), anchor, place) if lead.path else ""
    names = [
        (s.tool or s.check_run.check_key) + ("" if s.check_run.origin == RunOrigin.INTERNAL else " (posted)")
        for s in sources
    ]
    options = format_html_join(
        "",
        '<option value="{}"{}>{}</option>',
        ((value, " selected" if value == lead.triage else "", label) for value, label in TRIAGE_CHOICES),
    )
    return FindingRow(
        lead, sources, can, f"{urls.findings}{lead.pk}/change/", SafeString(where), ", ".join(names), options
    )


@dataclass(frozen=True)
class RowUrls:
    code: str  # the code browser, to which a path is appended
    findings: str  # the findings' admin list, to which "<pk>/change/" is appended

    @classmethod
    def for_version(cls, version: PluginVersion) -> "RowUrls":
        return cls(
            reverse("admin:submissions_pluginversion_code", args=[version.pk]),
            reverse("admin:reviews_finding_changelist"),
        )


@dataclass
class FindingGroup:
    kind: str
    severity: str
    rows: list[FindingRow] = field(default_factory=list)

    @property
    def open(self) -> int:
        return sum(1 for row in self.rows if row.finding.triage == Triage.OPEN)


def stage_rows(*, version: PluginVersion, user: User) -> list[StageReview]:
    """The current round's stage reviews the reader may see, in pipeline order, with who holds
    each and when it is due."""
    reviews = version.stage_reviews.filter(round=version.review_round)
    return list(
        visible_only(reviews, user)
        .select_related("stage", "assignee", "decided_by")
        .order_by("stage__order", "stage__key")
    )


def findings(*, version: PluginVersion, user: User) -> list[FindingGroup]:
    """The current round's findings, one row per place several sources report (the finding of
    Warden's own check governs, as in the rating), grouped by kind and severity, most severe
    first. Three queries, plus one per stage that owns findings for the triage rights.

    The runs are read once and set on their findings, and so is the version: joining them to
    every finding would decode each run's summary and the version's manifest once per row."""
    current = [run.pk for run in current_runs(version=version)]
    runs = (
        CheckRun.objects.filter(pk__in=current).select_related("stage_review", "posted_by").defer("summary").in_bulk()
    )
    every = list(findings_visible_to(user=user).filter(version=version, check_run__in=current).order_by("pk"))
    for finding in every:
        finding.check_run, finding.version = runs[finding.check_run_id], version
    rights: dict[int | None, bool] = {}
    groups: dict[tuple[str, str], FindingGroup] = {}
    urls = RowUrls.for_version(version)
    for sources in places(every, key=lambda f: (f.location_key, f.check_run_id)):
        sources.sort(key=lambda f: (f.check_run.origin != RunOrigin.INTERNAL, f.pk))
        lead, severity = _lead(sources)
        owner = lead.check_run.stage_review_id
        if owner not in rights:
            rights[owner] = can_triage(actor=user, finding=lead)
        group = groups.setdefault((lead.kind, severity), FindingGroup(lead.kind, severity))
        group.rows.append(_finding_row(lead, sources, rights[owner], urls))
    return sorted(groups.values(), key=lambda g: (SEVERITY_RANK.get(g.severity, 99), g.kind))


def _lead(sources: list[Finding]) -> tuple[Finding, str]:
    """The finding a row triages and the severity it is listed at, as the rating judges them
    (decisions/facts.py ``_merged``): Warden's own findings govern a place, the most severe open
    one leads, and the row is as severe as its most severe open source."""
    governing = [f for f in sources if f.check_run.origin == RunOrigin.INTERNAL] or sources
    open_ = [f for f in sources if f.triage in OPEN_TRIAGE]
    leaders = [f for f in governing if f in open_] or governing
    lead = min(leaders, key=lambda f: SEVERITY_RANK.get(f.severity, 99))
    shown = min(open_, key=lambda f: SEVERITY_RANK.get(f.severity, 99)) if open_ else lead
    return lead, shown.severity


def dependencies(groups: list[FindingGroup]) -> list[dict[str, Any]]:
    """Vulnerable dependencies, from the findings already read: package, version, the
    advisories and the releases that fix them."""
    by_package: dict[tuple[str, str], dict[str, Any]] = {}
    for group in groups:
        if group.kind != "dependency":
            continue
        for row in group.rows:
            data = row.finding.data
            key = (str(data.get("package", "")), str(data.get("version", "")))
            entry = by_package.setdefault(key, {"package": key[0], "version": key[1], "advisories": []})
            entry["advisories"].append(
                {
                    "finding": row.finding,
                    "id": data.get("advisory") or row.finding.rule_id,
                    "aliases": data.get("aliases", []),
                    "fixed": data.get("fixed") or data.get("fix_versions") or [],
                }
            )
    return sorted(by_package.values(), key=lambda e: (e["package"], e["version"]))


def performance(*, version: PluginVersion) -> dict[str, Any] | None:
    """The harness's KPIs beside the last approved version measured in the same run and the
    budget (whoever may see the version may see its check runs)."""
    run = latest_harness_run(version_id=version.pk)
    return performance_table(run=run) if run is not None else None


@dataclass
class ControlRow:
    assessment: ControlAssessment
    evidence: list[Evidence]  # the latest revision of each piece given for the control

    @property
    def is_open(self) -> bool:
        return self.assessment.status != AssessmentStatus.DONE


def controls(*, version: PluginVersion, user: User) -> tuple[StageReview | None, list[ControlRow], list[Evidence]]:
    """The compliance review of the current round and its controls, each with what the
    control requires, its result, the inputs an expression read, and the evidence given."""
    assessments = list(
        assessments_visible_to(user=user)
        .filter(stage_review__version=version, stage_review__round=version.review_round)
        .select_related("control__framework", "stage_review__stage")
        .order_by("control__framework__key", "control__key")
    )
    if not assessments:
        return None, [], []
    evidence = (
        evidence_visible_to(user=user)
        .filter(version=version, next__isnull=True)
        .prefetch_related(Prefetch("controls", to_attr="covered"))
        .order_by("pk")
    )
    by_control: dict[int, list[Evidence]] = defaultdict(list)
    in_review: list[Evidence] = []
    for item in evidence:
        for control in item.covered:  # Prefetch(to_attr=)
            by_control[control.pk].append(item)
        if item.status == EvidenceStatus.IN_REVIEW:
            in_review.append(item)
    rows = [ControlRow(a, by_control[a.control_id]) for a in assessments]
    return assessments[0].stage_review, rows, in_review


def threat_model(*, version: PluginVersion, user: User) -> ThreatModel | None:
    return (
        threat_models_visible_to(user=user)
        .filter(version=version)
        .select_related("reviewed_by")
        .prefetch_related("elements", "threats__element")
        .first()
    )


def threads(*, version: PluginVersion, user: User) -> list[Annotation]:
    """The threads the reader may see, each with its replies, open ones first."""
    visible = annotations_visible_to(user=user, version=version)
    replies = Prefetch(
        "replies",
        queryset=visible.filter(parent__isnull=False).select_related("author").order_by("created_at", "pk"),
        to_attr="thread",
    )
    return list(
        visible.filter(parent__isnull=True)
        .select_related("author", "resolved_by", "finding", "stage_review__stage", "assessment__control")
        .prefetch_related(replies)
        .order_by("resolved_at", "-created_at", "-pk")
    )


# Reading the code is recorded too, but it is not the version's story: an author reloading the
# code browser must not push the decisions off the trail the board reads (the log keeps all).
ACCESS_ACTIONS = ("version.browse", "version.diff", "version.download")


def audit_trail(*, version: PluginVersion, user: User) -> list[AuditEvent]:
    """The version's audit events and those of every stage review of it the reader may see,
    newest first, without the records of who read its code."""
    events = version_audit_visible_to(version=version, user=user).exclude(action__in=ACCESS_ACTIONS)
    return list(events[:MAX_AUDIT_EVENTS])


MAX_FILES_LISTED = 100


@dataclass
class ChangesSection:
    """What changed since the version compared with: files, manifest, findings and KPIs."""

    changes: Changes
    base_version: PluginVersion | None  # None: the previous revision of this version
    new_findings: int
    carried_over: int
    fixed: list[dict[str, Any]]  # the compared version's findings no current source reports

    @property
    def files_listed(self) -> list[Any]:
        return list(self.changes.files[:MAX_FILES_LISTED])

    @property
    def files_not_listed(self) -> int:
        return max(len(self.changes.files) - MAX_FILES_LISTED, 0)


def changes(*, version: PluginVersion, user: User, groups: list[FindingGroup]) -> ChangesSection | None:
    """Against the last approved version of the plugin, else the previous revision of this one:
    the file and manifest changes (from the revisions' file indexes: no archive is read) and
    which findings are new, carried over or fixed."""
    head = head_revision_for(version)
    base = base_revision_for(version) if head is not None else None
    if head is None or base is None or not versions_visible_to(user=user).filter(pk=base.version_id).exists():
        return None
    rows = [row for group in groups for row in group.rows]
    current = {source.fingerprint for row in rows for source in row.sources}
    fixed: list[dict[str, Any]] = []
    base_version = base.version if base.version_id != version.pk else None
    if base_version is not None:
        runs = [run.pk for run in current_runs(version=base_version)]
        fixed = [
            dict(row)
            for row in Finding.objects.filter(check_run__in=runs)
            .exclude(fingerprint__in=current)
            .values("rule_id", "title", "severity", "path", "line")
            .order_by("path", "line", "rule_id")[:MAX_FILES_LISTED]
        ]
    carried = sum(1 for row in rows if row.finding.carried_over)
    return ChangesSection(revision_changes(base, head), base_version, len(rows) - carried, carried, fixed)


def capabilities(*, version: PluginVersion) -> CapabilityMatrix:
    return capability_matrix(version=version)


def deployments(*, version: PluginVersion) -> list[Deployment]:
    """Where the version runs or ran, by environment (whoever may see the version may see them)."""
    return list(
        Deployment.objects.filter(version=version)
        .select_related("environment", "deployed_by", "ended_by")
        .order_by("environment__order", "environment__key", "-deployed_at")
    )
