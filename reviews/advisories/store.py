"""The advisory store in the database: importing OSV data and matching a version against it.

Import is idempotent: an advisory already stored with the same or a newer ``modified``
is left alone, so re-importing an export changes nothing.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from django.db import transaction
from django_q.tasks import async_task

from reviews.findings_data import FindingData
from reviews.models import Advisory, AdvisoryPackage

from .matching import AdvisoryIndex, Match, PinnedRequirement, normalise_name, parse_requirement
from .osv import Advisory as OsvAdvisory
from .osv import parse_advisory

BATCH = 500


@dataclass
class ImportResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[str] = field(default_factory=list)
    packages: set[str] = field(default_factory=set)  # the PyPI packages of what was created or updated

    @property
    def seen(self) -> int:
        return self.created + self.updated + self.unchanged


def advisories_import(
    *, advisories: Iterable[OsvAdvisory], progress: Callable[[int], None] | None = None, dry_run: bool = False
) -> ImportResult:
    """Store advisories in batches; each batch is one transaction."""
    result = ImportResult()
    batch: list[OsvAdvisory] = []
    for advisory in advisories:
        batch.append(advisory)
        if len(batch) >= BATCH:
            _import_batch(batch, result, dry_run)
            batch = []
            if progress:
                progress(result.seen)
    _import_batch(batch, result, dry_run)
    if progress:
        progress(result.seen)
    if (result.created or result.updated) and not dry_run:
        async_task(
            "reviews.tasks.rematch_released_versions", sorted(result.packages), task_name="rematch-released-versions"
        )
    return result


def _import_batch(batch: list[OsvAdvisory], result: ImportResult, dry_run: bool) -> None:
    latest: dict[str, OsvAdvisory] = {}
    for advisory in batch:  # the same id twice in one batch: the newest wins
        if advisory.id not in latest or advisory.modified > latest[advisory.id].modified:
            latest[advisory.id] = advisory
    result.unchanged += len(batch) - len(latest)
    with transaction.atomic():
        stored = {a.osv_id: a for a in Advisory.objects.select_for_update().filter(osv_id__in=latest)}
        fresh = [a for a in latest.values() if a.id not in stored or a.modified > stored[a.id].modified]
        result.unchanged += len(latest) - len(fresh)
        result.created += sum(1 for a in fresh if a.id not in stored)
        result.updated += sum(1 for a in fresh if a.id in stored)
        if dry_run or not fresh:
            return
        result.packages |= {normalise_name(p.name) for a in fresh for p in a.packages if p.ecosystem == "PyPI"}
        Advisory.objects.filter(osv_id__in=[a.id for a in fresh if a.id in stored]).delete()
        rows = Advisory.objects.bulk_create([_row(a) for a in fresh])
        AdvisoryPackage.objects.bulk_create(
            AdvisoryPackage(advisory=row, ecosystem=package.ecosystem, name=package.name)
            for row, advisory in zip(rows, fresh, strict=True)
            for package in {(p.ecosystem, p.name): p for p in advisory.packages}.values()
        )


def _row(advisory: OsvAdvisory) -> Advisory:
    return Advisory(
        osv_id=advisory.id,
        aliases=list(advisory.aliases),
        summary=advisory.summary[:2000],
        severity=advisory.severity,
        modified=advisory.modified,
        published=advisory.published,
        withdrawn=advisory.withdrawn,
        raw=advisory.raw,
    )


def match_requirements(*, requirements: Iterable[str]) -> tuple[list[Match], list[str]]:
    """Match pinned requirements against the stored PyPI advisories; also return the
    requirements that are not pinned (and so cannot be matched)."""
    pinned: list[PinnedRequirement] = []
    unpinned: list[str] = []
    for text in requirements:
        requirement = parse_requirement(text)
        if requirement:
            pinned.append(requirement)
        else:
            unpinned.append(text)
    names = {r.name for r in pinned}
    rows = Advisory.objects.filter(packages__ecosystem="PyPI", packages__name__in=names, withdrawn__isnull=True)
    index = AdvisoryIndex(parse_advisory(raw) for raw in rows.distinct().values_list("raw", flat=True))
    return index.match(pinned), unpinned


def match_findings(matches: list[Match]) -> list[FindingData]:
    """One finding per requirement and vulnerability; aliases of one another (a PYSEC and
    its GHSA) are folded into one finding that names them all."""
    findings: list[FindingData] = []
    claimed: dict[tuple[str, str], int] = {}
    for match in matches:
        advisory, requirement = match.advisory, match.requirement
        names = {advisory.id, *advisory.aliases}
        key = next(((requirement.name, n) for n in names if (requirement.name, n) in claimed), None)
        if key is not None:
            continue
        for name in names:
            claimed[(requirement.name, name)] = len(findings)
        findings.append(
            FindingData(
                rule_id=advisory.id,
                kind="dependency",
                severity=advisory.severity,
                tool="osv",
                title=f"{requirement.name} {requirement.version}: {advisory.summary or advisory.id}"[:300],
                message=advisory.details[:4000],
                path="plugin.toml",
                snippet=f"{requirement.name}=={requirement.version}",
                data={
                    "advisory": advisory.id,
                    "aliases": sorted(advisory.aliases),
                    "affected": match.affected,
                    "fixed": list(match.fixed),
                    "package": requirement.name,
                    "version": requirement.version,
                },
            )
        )
    return findings
