"""Match pinned requirements (``requests==2.31.0``) against OSV advisories.

Semantics follow the OSV schema's ``IsVulnerable`` evaluation: a version is affected when it
is listed in ``versions`` or lies in an ECOSYSTEM range, where a range's events, sorted by
version, open an interval at ``introduced`` (``"0"`` meaning "before every version") and close
it before ``fixed`` or after ``last_affected``; ``limit`` events bound the whole range. Only
PyPI packages and ECOSYSTEM ranges are evaluated (SEMVER and GIT ranges say nothing PEP 440
can order). Version strings that do not parse under PEP 440 are skipped, never fatal.

Everything that can be computed ahead of time (parsed versions, intervals, readable range
text, the fixes worth suggesting) is computed once when the index is built; matching one
requirement is a dict lookup by name, one bisect on that package's versions, and integer
comparisons.
"""

from __future__ import annotations

import functools
import re
from bisect import bisect_left
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

from packaging.requirements import InvalidRequirement, Requirement
from packaging.version import InvalidVersion, Version

from reviews.advisories.osv import Advisory, AffectedPackage, normalise_name

_VERSIONS_SHOWN = 6
_OPTIONS = re.compile(r"\s+(?:#|--).*$", re.DOTALL)  # "  # comment", " --hash=sha256:..."


@dataclass(frozen=True)
class PinnedRequirement:
    """A requirement that names exactly one release: the only kind a version match can judge."""

    name: str  # normalised on construction, so lookups never miss on spelling
    version: str
    text: str = ""  # the requirement as written, for reports

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", normalise_name(self.name))


@dataclass(frozen=True)
class Match:
    requirement: PinnedRequirement
    advisory: Advisory
    affected: str  # the range or versions that matched, e.g. ">=2.3.0, <2.31.0"
    fixed: tuple[str, ...]  # releases after this one that fix it; empty when none is known


def parse_requirement(text: str) -> PinnedRequirement | None:
    """``name==version`` (or ``===``) with nothing else to choose between gives a pin; ranges,
    wildcards, URLs, several specifiers and unparseable lines give None: the eligibility
    check reports those, not the advisory matcher."""
    line = _OPTIONS.sub("", text.strip())
    if not line or line.startswith(("#", "-")):
        return None
    try:
        requirement = Requirement(line)
    except InvalidRequirement:
        return None
    specifiers = list(requirement.specifier)
    if requirement.url or len(specifiers) != 1:
        return None
    (specifier,) = specifiers
    if specifier.operator not in ("==", "===") or specifier.version.endswith(".*"):
        return None
    return PinnedRequirement(name=requirement.name, version=specifier.version, text=text.strip())


def parse_version(text: str) -> Version | None:
    """PEP 440 or nothing: advisories carry legacy version strings that must not stop a scan."""
    try:
        return Version(text)
    except InvalidVersion:
        return None


_parse_known = functools.lru_cache(maxsize=65_536)(parse_version)
"""For the index build: PyPA files list the same releases over and over (every Django
advisory lists every affected Django release), so each string is parsed once."""


# --- one package's advisories on one version axis -----------------------------------------
#
# Every version that any advisory names for a package (bounds, limits, listed versions,
# fixes) goes on one sorted axis. Slot 2*i+1 is axis[i] itself and slot 2*i the gap just
# below it, so "v is in [low, high)" becomes two integer comparisons once v's slot is found
# by one bisect: a requirement costs log2(axis) Version comparisons, not a few per advisory.


class _Interval(NamedTuple):
    low: Version | None  # None: introduced "0", before every version
    high: Version | None  # None: never fixed
    inclusive: bool  # last_affected rather than fixed
    text: str


_SortKey = tuple[int] | tuple[int, Version]
_Event = tuple[_SortKey, str, Version | None, str]  # (sort key, kind, parsed version, text)


def _walk(events: Iterable[tuple[str, str]]) -> tuple[list[_Interval], list[Version]]:
    """One range's events, in version order as the OSV evaluation reads them, as disjoint
    intervals plus its limits (an empty list when there is none, or one is ``*``)."""
    timeline: list[_Event] = []
    limits: list[Version] = []
    unlimited = False
    for kind, text in events:
        version = _parse_known(text)
        if kind == "limit":
            unlimited |= "*" in text
            limits += [version] if version is not None else []
        elif kind == "introduced" and text == "0":
            timeline.append(((0,), kind, None, text))  # "0" sorts before every version
        elif version is not None:  # an unparseable version is skipped, never fatal
            timeline.append(((1, version), kind, version, text))
    timeline.sort(key=lambda event: event[0])  # stable: equal versions keep the source order
    return list(_intervals(timeline)), [] if unlimited else limits


def _intervals(timeline: list[_Event]) -> Iterator[_Interval]:
    """introduced opens an interval (unless one is open); fixed or last_affected closes it."""
    opened: tuple[Version | None, str] | None = None
    for _, kind, version, text in timeline:
        if kind == "introduced" and opened is None:
            opened = (version, text)
        elif kind in ("fixed", "last_affected") and opened is not None:
            inclusive = kind == "last_affected"
            yield _Interval(opened[0], version, inclusive, _describe(opened, text, inclusive))
            opened = None
    if opened is not None:
        yield _Interval(opened[0], None, False, _describe(opened, None, False))


def _describe(opened: tuple[Version | None, str], high: str | None, inclusive: bool) -> str:
    parts = [] if opened[0] is None else [f">={opened[1]}"]
    if high is not None:
        parts.append(f"{'<=' if inclusive else '<'}{high}")
    return ", ".join(parts) or "all versions"


@dataclass
class _Draft:
    """One advisory's parsed view of one package, waiting for the package's axis."""

    advisory: Advisory
    ranges: list[tuple[list[_Interval], list[Version]]]
    listed: dict[str, Version]
    fixed: dict[str, Version]

    def versions(self) -> Iterator[Version]:
        for intervals, limits in self.ranges:
            yield from limits
            yield from (bound for i in intervals for bound in (i.low, i.high) if bound is not None)
        yield from self.listed.values()
        yield from self.fixed.values()


def _draft(advisory: Advisory, packages: list[AffectedPackage]) -> _Draft:
    """Merge every ``affected`` entry the advisory has for one package; parse each version once."""
    ranges = [r for p in packages for r in p.ranges if r.type == "ECOSYSTEM"]
    listed = {text: _parse_known(text) for p in packages for text in p.versions}
    fixed = {text: _parse_known(text) for r in ranges for kind, text in r.events if kind == "fixed"}
    return _Draft(
        advisory=advisory,
        ranges=[_walk(r.events) for r in ranges],
        listed={text: v for text, v in listed.items() if v is not None},
        fixed={text: v for text, v in fixed.items() if v is not None},
    )


class _Axis:
    def __init__(self, versions: Iterable[Version]) -> None:
        self.points = sorted(set(versions))
        self.top = 2 * len(self.points)
        self._slots = {version: 2 * i + 1 for i, version in enumerate(self.points)}

    def slot(self, version: Version) -> int:
        """Where any version falls: on a point of the axis (odd) or in a gap (even)."""
        i = bisect_left(self.points, version)
        return 2 * i + 1 if i < len(self.points) and self.points[i] == version else 2 * i

    def at(self, version: Version) -> int:
        """The slot of a version known to be on the axis."""
        return self._slots[version]


@dataclass(frozen=True, slots=True)
class _Span:
    first: int
    last: int  # inclusive
    text: str


@dataclass(frozen=True, slots=True)
class _Entry:
    """One advisory for one package, in slots of that package's axis."""

    advisory: Advisory
    spans: tuple[_Span, ...]
    points: frozenset[int]  # explicitly listed versions
    versions_text: str
    fixes: tuple[tuple[int, str], ...]  # fixed releases this advisory does not itself affect, by slot

    def fixes_after(self, slot: int) -> tuple[str, ...]:
        """Later releases that are themselves unaffected: the upgrades worth suggesting."""
        return tuple(text for fixed, text in self.fixes if fixed > slot)


def _entry(draft: _Draft, axis: _Axis) -> _Entry:
    spans = tuple(span for intervals, limits in draft.ranges for span in _spans(intervals, limits, axis))
    points = frozenset(axis.at(version) for version in draft.listed.values())
    fixed = {axis.at(version): text for text, version in reversed(draft.fixed.items())}
    return _Entry(
        advisory=draft.advisory,
        spans=spans,
        points=points,
        versions_text=_versions_text(draft.listed),
        fixes=tuple((slot, text) for slot, text in sorted(fixed.items()) if not _covers(spans, points, slot)),
    )


def _covers(spans: tuple[_Span, ...], points: frozenset[int], slot: int) -> bool:
    """A "fixed" release can still be affected (overlapping ranges, a listed version)."""
    return slot in points or any(span.first <= slot <= span.last for span in spans)


def _spans(intervals: list[_Interval], limits: list[Version], axis: _Axis) -> Iterator[_Span]:
    """[low, high) is slots 2a+1..2b, [low, high] is 2a+1..2b+1; a limit L keeps slots below L."""
    ceiling = max(axis.at(limit) for limit in limits) - 1 if limits else axis.top
    for interval in intervals:
        first = 0 if interval.low is None else axis.at(interval.low)
        last = axis.top if interval.high is None else axis.at(interval.high) - (0 if interval.inclusive else 1)
        if first <= min(last, ceiling):
            yield _Span(first, min(last, ceiling), interval.text)


def _versions_text(versions: dict[str, Version]) -> str:
    ordered = [text for text, _ in sorted(versions.items(), key=lambda item: item[1])]
    shown = ", ".join(ordered[:_VERSIONS_SHOWN])
    more = len(ordered) - _VERSIONS_SHOWN
    return f"versions: {shown}" + (f" and {more} more" if more > 0 else "")


@dataclass(frozen=True, slots=True)
class _Package:
    """Every advisory for one package, with all their spans in one list sorted by start, so a
    lookup is one tight loop over tuples that stops at the first span starting above the slot."""

    axis: _Axis
    entries: tuple[_Entry, ...]
    spans: tuple[tuple[int, int, int, str], ...]  # (first, last, entry index, text), by first
    points: dict[int, tuple[int, ...]]  # slot of a listed version -> entry indexes

    def affected(self, slot: int) -> dict[int, str]:
        """Entry index -> why it affects the version at ``slot``; a range's text before a list's."""
        found: dict[int, str] = {}
        for first, last, index, text in self.spans:
            if first > slot:
                break
            if slot <= last and index not in found:
                found[index] = text
        for index in self.points.get(slot, ()):
            found.setdefault(index, self.entries[index].versions_text)
        return found


def _package(drafts: list[_Draft]) -> _Package:
    axis = _Axis(version for draft in drafts for version in draft.versions())
    entries = tuple(_entry(draft, axis) for draft in drafts)
    spans = sorted((s.first, s.last, i, s.text) for i, entry in enumerate(entries) for s in entry.spans)
    points: dict[int, list[int]] = {}
    for i, entry in enumerate(entries):
        for slot in entry.points:
            points.setdefault(slot, []).append(i)
    return _Package(axis, entries, tuple(spans), {slot: tuple(found) for slot, found in points.items()})


# --- the index -----------------------------------------------------------------------------


class AdvisoryIndex:
    """PyPI advisories by normalised package name, ready for many fast ``match`` calls.

    Withdrawn advisories are left out; when one id arrives twice (the same advisory from two
    sources), the most recently modified copy is kept.
    """

    def __init__(self, advisories: Iterable[Advisory]) -> None:
        latest: dict[str, Advisory] = {}
        for advisory in advisories:
            kept = latest.get(advisory.id)
            if kept is None or advisory.modified > kept.modified:
                latest[advisory.id] = advisory
        live = [advisory for advisory in latest.values() if not advisory.is_withdrawn]
        drafts: dict[str, list[_Draft]] = {}
        for advisory in live:
            for name, packages in _pypi_packages(advisory).items():
                drafts.setdefault(name, []).append(_draft(advisory, packages))
        self._packages = {name: _package(group) for name, group in drafts.items()}
        self._count = len(live)

    def __len__(self) -> int:
        """Advisories indexed (withdrawn ones and duplicates not counted)."""
        return self._count

    def match(self, requirements: Iterable[PinnedRequirement]) -> list[Match]:
        """Every (requirement, advisory) pair where the pinned release is affected, in the
        requirements' order, then advisory id."""
        found: list[Match] = []
        for requirement in requirements:
            package = self._packages.get(requirement.name)
            version = parse_version(requirement.version) if package is not None else None
            if package is None or version is None:
                continue
            slot = package.axis.slot(version)
            hits = []
            for index, where in package.affected(slot).items():
                entry = package.entries[index]
                hits.append(Match(requirement, entry.advisory, where, entry.fixes_after(slot)))
            found += sorted(hits, key=lambda match: match.advisory.id)
        return found


def _pypi_packages(advisory: Advisory) -> dict[str, list[AffectedPackage]]:
    by_name: dict[str, list[AffectedPackage]] = {}
    for package in advisory.packages:
        if package.ecosystem == "PyPI":
            by_name.setdefault(package.name, []).append(package)
    return by_name
