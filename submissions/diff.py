"""What changed between two revisions of a plugin: files, manifest, and each file's diff.

``revision_changes(base, head)`` compares the revisions' file indexes and manifests and
opens no archive; ``file_diff`` and ``file_diffs`` read the changed text files through
intake's checked walk (artifact_files.py) and render unified diffs with Pygments.

Which revision a version is compared with (``base_revision_for``):

1. the current revision of the plugin's most recently approved *earlier* version, where
   approved means approved, deployed or superseded (each was approved and none had its
   approval taken back). Revoked and rolled-back versions do not count: their approval
   was withdrawn, so a diff against them would hide what made them unsafe. (Ordered by
   the decision time, as reviews/checks/engine.py finds the last approved version, which
   also counts rolled-back versions.)
2. otherwise the version's previous revision (an author's fix within a round),
3. otherwise none: a first version has nothing to compare with.
"""

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db.models import F
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from governance.errors import NotFound

from .artifact_files import ArtifactUnavailable, FileEntry, read_members
from .highlight import highlight_diff, normalise_newlines
from .models import STANDING_APPROVALS, PluginVersion, VersionRevision

APPROVED_BASES = STANDING_APPROVALS

# What one file's diff may cost: larger or longer files are listed, not diffed.
MAX_DIFF_FILE_BYTES = 512 * 1024
# difflib's time grows with the product of the two sides' lengths when lines repeat (a plugin can
# ship files made for it: 20,000 repeated lines reversed take 30 s); 3,000 lines a side keep the
# worst file under 0.3 s, and a page compares at most MAX_PAGE_INPUT_LINES lines in all.
MAX_DIFF_INPUT_LINES = 3_000
MAX_PAGE_INPUT_LINES = 30_000
MAX_DIFF_LINES = 1_000  # rendered lines of one file's diff
MAX_LINE_CHARS = 1_000

PLUGIN_FIELDS = ("entrypoint", "host_api", "license")
KNOWN_KEYS = {
    "permissions": ("network", "filesystem", "subprocess", "environment"),
    "data": ("categories", "residency", "encryption_in_transit", "encryption_at_rest", "retention_days"),
}


# -- which revisions --------------------------------------------------------------------


def head_revision_for(version: PluginVersion) -> VersionRevision | None:
    """The version's current revision (the one its checks read)."""
    head = VersionRevision.objects.filter(version=version, number=version.revision).first()
    if head is not None:
        head.version = version  # named without another query
    return head


def base_revision_for(version: PluginVersion) -> VersionRevision | None:
    """The revision ``version`` is compared with (see the module's docstring)."""
    approved = (
        VersionRevision.objects.filter(
            version__plugin_id=version.plugin_id,
            version__status__in=APPROVED_BASES,
            version__pk__lt=version.pk,
            number=F("version__revision"),
        )
        .select_related("version__plugin")
        .order_by(F("version__decided_at").desc(nulls_last=True), "-version_id")
        .first()
    )
    if approved is not None or version.revision <= 1:
        return approved
    previous = VersionRevision.objects.filter(version=version, number=version.revision - 1).first()
    if previous is not None:
        previous.version = version
    return previous


# -- what changed -----------------------------------------------------------------------


@dataclass(frozen=True)
class FileChange:
    path: str
    status: str  # added, removed, changed
    before: FileEntry | None
    after: FileEntry | None

    @property
    def text(self) -> bool:
        return all(entry["text"] for entry in (self.before, self.after) if entry is not None)

    @property
    def summary(self) -> str:
        """``text, 1,024 → 1,100 bytes``; ``binary, 20 bytes`` for an added or removed file."""
        sizes = " → ".join(f"{entry['size']:,}" for entry in (self.before, self.after) if entry is not None)
        return f"{'text' if self.text else 'binary'}, {sizes} bytes"


@dataclass(frozen=True)
class ManifestChange:
    """One manifest entry that differs. ``widens`` says the head asks for more than the base:
    a permission entry added (a host, a path, an environment variable), subprocess turned
    on, a data category or residency added, encryption turned off, a longer retention."""

    area: str  # plugin, permissions, data, dependencies
    field: str  # entrypoint, network, categories, ... (a dependency: its normalised name)
    kind: str  # added, removed, changed
    before: str
    after: str
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    widens: bool = False


@dataclass(frozen=True)
class Changes:
    base: VersionRevision | None
    head: VersionRevision
    files: tuple[FileChange, ...]  # by path
    unchanged: int
    manifest: tuple[ManifestChange, ...]
    notes: tuple[str, ...] = field(default=())

    @property
    def added(self) -> list[FileChange]:
        return [change for change in self.files if change.status == "added"]

    @property
    def removed(self) -> list[FileChange]:
        return [change for change in self.files if change.status == "removed"]

    @property
    def changed(self) -> list[FileChange]:
        return [change for change in self.files if change.status == "changed"]

    @property
    def widened(self) -> list[ManifestChange]:
        return [change for change in self.manifest if change.widens]


def revision_changes(base: VersionRevision | None, head: VersionRevision) -> Changes:
    """Files added, removed and changed, and the manifest's changes, from the two indexes
    and manifests alone (no archive is read). Without a base every file is added."""
    before, after = (base.files if base else {}), head.files
    files, unchanged = [], 0
    for path in sorted(before.keys() | after.keys()):
        old, new = before.get(path), after.get(path)
        if old is not None and new is not None and old["sha256"] == new["sha256"]:
            unchanged += 1
            continue
        status = "added" if old is None else "removed" if new is None else "changed"
        files.append(FileChange(path=path, status=status, before=old, after=new))
    notes = tuple(
        f"The archive of {revision} could not be indexed, so its files are unknown: the lists below are incomplete."
        for revision in (base, head)
        if revision is not None and not revision.files
    )
    manifest = manifest_changes(base.manifest if base else {}, head.manifest)
    return Changes(base=base, head=head, files=tuple(files), unchanged=unchanged, manifest=manifest, notes=notes)


def manifest_changes(before: dict[str, Any], after: dict[str, Any]) -> tuple[ManifestChange, ...]:
    """Entry point and host API, permissions, data handling and dependencies, before → after."""
    rows: list[ManifestChange] = []
    old_plugin, new_plugin = before.get("plugin") or {}, after.get("plugin") or {}
    for key in PLUGIN_FIELDS:
        rows += _compare("plugin", key, old_plugin.get(key), new_plugin.get(key))
    for area, known in KNOWN_KEYS.items():
        old, new = before.get(area) or {}, after.get(area) or {}
        extra = sorted((old.keys() | new.keys()) - set(known))
        for key in (*known, *extra):
            rows += _compare(area, key, old.get(key), new.get(key))
    rows += _dependency_changes(
        (before.get("dependencies") or {}).get("requirements") or [],
        (after.get("dependencies") or {}).get("requirements") or [],
    )
    return tuple(rows)


def _compare(area: str, key: str, old: Any, new: Any) -> list[ManifestChange]:
    if old == new:
        return []
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    if isinstance(old, list) or isinstance(new, list):
        old_items, new_items = _items(old), _items(new)
        added = tuple(item for item in new_items if item not in old_items)
        removed = tuple(item for item in old_items if item not in new_items)
        if not added and not removed:
            return []  # the same entries in another order
    kind = "added" if old is None else "removed" if new is None else "changed"
    return [
        ManifestChange(
            area=area,
            field=key,
            kind=kind,
            before=_shown(old),
            after=_shown(new),
            added=added,
            removed=removed,
            widens=_widens(area, key, old, new, added),
        )
    ]


def _widens(area: str, key: str, old: Any, new: Any, added: tuple[str, ...]) -> bool:
    if area == "permissions":
        if isinstance(new, bool) or isinstance(old, bool):
            return new is True and old is not True
        return bool(added) or (not isinstance(new, list) and new is not None)
    if area == "data":
        if key in ("categories", "residency"):
            return bool(added)
        if key.startswith("encryption_"):
            return old is True and new is not True
        if key == "retention_days":
            return isinstance(new, int) and (not isinstance(old, int) or new > old)
    return False


def _dependency_changes(old: list[str], new: list[str]) -> list[ManifestChange]:
    """Requirements matched by their normalised name: added, removed, re-pinned."""
    before, after = _by_name(old), _by_name(new)
    rows = []
    for name in sorted(before.keys() | after.keys()):
        was, now = before.get(name), after.get(name)
        if was == now:
            continue
        kind = "added" if was is None else "removed" if now is None else "changed"
        rows.append(
            ManifestChange(
                area="dependencies", field=name, kind=kind, before=was or "—", after=now or "—", widens=False
            )
        )
    return rows


def _by_name(requirements: Iterable[str]) -> dict[str, str]:
    named: dict[str, list[str]] = {}
    for raw in requirements:
        try:
            name: str = canonicalize_name(Requirement(raw).name)
        except InvalidRequirement:
            name = raw
        named.setdefault(name, []).append(raw)
    return {name: ", ".join(sorted(raws)) for name, raws in named.items()}


def _items(value: Any) -> list[str]:
    if value is None:
        return []
    return [str(item) for item in value] if isinstance(value, list) else [str(value)]


def _shown(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(str(item) for item in value) or "none"
    return str(value)


# -- each file's diff -------------------------------------------------------------------


@dataclass(frozen=True)
class FileDiff:
    change: FileChange
    html: SafeString  # the highlighted diff; empty when only ``note`` is shown
    lines: int = 0
    note: str = ""  # why there is no diff, or where it was cut


def file_diff(base: VersionRevision | None, head: VersionRevision, path: str) -> SafeString:
    """One file's diff as HTML (with a note where there is none, or where it was cut).
    ``path`` must be added, removed or changed between the two (else NotFound)."""
    change = next((c for c in revision_changes(base, head).files if c.path == path), None)
    if change is None:
        raise NotFound(f"{path!r} did not change between {base} and {head}.", code="no_such_change")
    [diff] = file_diffs(base, head, [change])
    note = format_html('<p class="warden-diff-note">{}</p>', diff.note) if diff.note else ""
    return mark_safe(diff.html + note)  # noqa: S308 - both parts are escaped


def file_diffs(
    base: VersionRevision | None,
    head: VersionRevision,
    changes: Sequence[FileChange],
    *,
    max_lines: int | None = None,
) -> list[FileDiff]:
    """The diffs of ``changes``, reading each archive once. ``max_lines`` caps all of
    them together: once spent, later files get a note instead of a diff."""
    wanted = [c for c in changes if c.text and _small(c)]
    try:
        old = read_members(base, [c.path for c in wanted if c.before]) if base else {}
        new = read_members(head, [c.path for c in wanted if c.after])
    except ArtifactUnavailable as exc:
        return [FileDiff(change=c, html=SafeString(), note=exc.detail) for c in changes]
    budget = MAX_DIFF_LINES * len(changes) if max_lines is None else max_lines
    work = MAX_PAGE_INPUT_LINES
    diffs = []
    for change in changes:
        if change.path not in old and change.path not in new:
            diffs.append(FileDiff(change=change, html=SafeString(), note=_why_not(change, budget)))
            continue
        a, b = _lines(old.get(change.path, b"")), _lines(new.get(change.path, b""))
        if len(a) + len(b) > work:
            note = "Not compared here: this page has compared as many lines as it may; open the file's own diff."
            diffs.append(FileDiff(change=change, html=SafeString(), note=note))
            continue
        diff = _diff(change, a, b, min(budget, MAX_DIFF_LINES))
        work -= len(a) + len(b)
        budget -= diff.lines
        diffs.append(diff)
    return diffs


def _small(change: FileChange) -> bool:
    return all(entry["size"] <= MAX_DIFF_FILE_BYTES for entry in (change.before, change.after) if entry is not None)


def _why_not(change: FileChange, budget: int) -> str:
    if not change.text:
        return f"Not shown: {change.summary}."
    if not _small(change):
        return f"Too large to diff here ({change.summary}): open it in the code browser or download the artifact."
    return "Not shown: the page shows a limited number of diff lines."


def _diff(change: FileChange, a: list[str], b: list[str], limit: int) -> FileDiff:
    if limit <= 0:
        return FileDiff(change=change, html=SafeString(), note=_why_not(change, 0))
    if len(a) > MAX_DIFF_INPUT_LINES or len(b) > MAX_DIFF_INPUT_LINES:
        note = f"Too long to diff here ({len(a):,} → {len(b):,} lines)."
        return FileDiff(change=change, html=SafeString(), note=note)
    shown: list[str] = []
    cut = False
    for line in difflib.unified_diff(a, b, f"a/{change.path}", f"b/{change.path}", lineterm=""):
        if len(shown) >= limit:
            cut = True
            break
        shown.append(line if len(line) <= MAX_LINE_CHARS else line[:MAX_LINE_CHARS] + " …")
    if not shown:
        return FileDiff(change=change, html=SafeString(), note="The files differ only in their line endings.")
    note = f"Diff truncated after {len(shown):,} lines." if cut else ""
    return FileDiff(change=change, html=highlight_diff("\n".join(shown) + "\n"), lines=len(shown), note=note)


def _lines(data: bytes) -> list[str]:
    text = normalise_newlines(data.decode("utf-8", errors="replace"))
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return lines
