"""Read OSV advisories (https://ossf.github.io/osv-schema/) into plain, immutable objects.

Sources: one JSON file (an object or a list), a directory tree of JSON and PyPA-style YAML
files (https://github.com/pypa/advisory-database), or the OSV ``all.zip`` export. Every
loader yields one ``Advisory`` at a time so a 300 MB export is never held whole in memory.

Bad input raises ``ReportError`` naming the file, the advisory id and the field, so whoever
runs an import can fix the source. Pass ``errors=<a list>`` to a loader to collect those
errors and carry on instead: one bad file in thousands should not stop an import.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal

import yaml
from packaging.utils import canonicalize_name

from governance.text import lone_surrogate, yaml_load
from reviews.advisories.severity import derive_severity
from reviews.findings_data import ReportError

MAX_MEMBER_BYTES = 5 * 1024 * 1024
"""An OSV advisory is a few kB; a zip member past this is refused rather than decompressed."""

Errors = Literal["raise"] | list[ReportError]
"""``"raise"`` stops at the first bad entry; a list collects the errors and the load goes on."""

_EVENT_KINDS = ("introduced", "fixed", "last_affected", "limit")
_VERSIONED_RANGE_TYPES = ("ECOSYSTEM", "SEMVER")  # GIT ranges hold commit hashes, not versions


@dataclass(frozen=True)
class Range:
    """One ``affected[].ranges[]`` entry; events keep the source's order and raw strings."""

    type: str
    events: tuple[tuple[str, str], ...]  # (kind, version), kind one of _EVENT_KINDS


@dataclass(frozen=True)
class AffectedPackage:
    ecosystem: str
    name: str  # PEP 503-normalised for PyPI; other ecosystems verbatim
    ranges: tuple[Range, ...]
    versions: frozenset[str]
    fixed: tuple[str, ...]  # fixed versions from ECOSYSTEM/SEMVER events, for reporting


@dataclass(frozen=True)
class Advisory:
    id: str
    modified: datetime
    published: datetime | None
    withdrawn: datetime | None
    aliases: tuple[str, ...]
    summary: str
    details: str
    severity: str  # critical, high, medium or low
    packages: tuple[AffectedPackage, ...]
    raw: dict = field(compare=False, hash=False, repr=False)

    @property
    def is_withdrawn(self) -> bool:
        """A withdrawn advisory was judged wrong by its publisher: it must never produce a finding."""
        return self.withdrawn is not None


def normalise_name(name: str) -> str:
    """PEP 503: ``PyYAML``, ``pyyaml`` and ``Foo_Bar``/``foo-bar`` name one project each."""
    return canonicalize_name(name)


# --- parsing one advisory ---------------------------------------------------------------


def parse_advisory(data: Any) -> Advisory:
    """Validate and convert one OSV object; a ReportError names the id and the field at fault."""
    if not isinstance(data, dict):
        raise ReportError(f"an OSV advisory must be an object, not {type(data).__name__}")
    if (bad := lone_surrogate(data)) is not None:
        raise ReportError(f"{bad[:60]!r} holds a lone UTF-16 surrogate, which is not text")
    ident = data.get("id")
    if not isinstance(ident, str) or not ident.strip():
        raise ReportError("advisory without an id: field 'id' must be a non-empty string")
    modified = _timestamp(data, "modified", ident)
    if modified is None:
        raise ReportError(f"{ident}: field 'modified' is missing")
    affected = _list(data, "affected", ident)
    return Advisory(
        id=ident,
        modified=modified,
        published=_timestamp(data, "published", ident),
        withdrawn=_timestamp(data, "withdrawn", ident),
        aliases=tuple(_string_list(data, "aliases", ident)),
        summary=_text(data, "summary", ident),
        details=_text(data, "details", ident),
        severity=derive_severity(data),
        packages=tuple(_affected(item, f"affected[{n}]", ident) for n, item in enumerate(affected)),
        raw=data,
    )


def _timestamp(data: dict, key: str, ident: str) -> datetime | None:
    """RFC 3339 text, or a date YAML already converted; naive times are UTC, as OSV requires."""
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ReportError(f"{ident}: field {key!r} is not an RFC 3339 timestamp: {value!r}") from None
    elif isinstance(value, date) and not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    if not isinstance(value, datetime):
        raise ReportError(f"{ident}: field {key!r} must be a timestamp string, not {type(value).__name__}")
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _text(data: dict, key: str, ident: str, at: str = "") -> str:
    """An optional string field; ``at`` is the path of ``data`` inside the advisory, for errors."""
    value = data.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ReportError(f"{ident}: field '{at}{key}' must be a string, not {type(value).__name__}")
    return value


def _list(data: dict, key: str, ident: str, at: str = "") -> list:
    """An optional list field; ``at`` is the path of ``data`` inside the advisory, for errors."""
    value = data.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise ReportError(f"{ident}: field '{at}{key}' must be a list, not {type(value).__name__}")
    return value


def _string_list(data: dict, key: str, ident: str) -> list[str]:
    items = _list(data, key, ident)
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise ReportError(f"{ident}: field '{key}[{i}]' must be a string, not {type(item).__name__}")
    return items


def _version_text(value: Any, where: str, ident: str) -> str:
    """Versions are strings. An int is safe to stringify; a float from unquoted YAML is not
    (``5.10`` arrives as 5.1), so it is refused instead of silently matching the wrong release."""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise ReportError(f"{ident}: field {where!r} must be a version string, not {type(value).__name__} {value!r}")


def _affected(entry: Any, where: str, ident: str) -> AffectedPackage:
    if not isinstance(entry, dict):
        raise ReportError(f"{ident}: field {where!r} must be an object")
    package = entry.get("package", {})  # optional in OSV when the ranges are GIT commits
    if not isinstance(package, dict):
        raise ReportError(f"{ident}: field '{where}.package' must be an object")
    ecosystem = _text(package, "ecosystem", ident, f"{where}.package.")
    name = _text(package, "name", ident, f"{where}.package.")
    if ecosystem == "PyPI" and not name.strip():
        raise ReportError(f"{ident}: field '{where}.package.name' is missing for a PyPI package")
    listed_ranges = _list(entry, "ranges", ident, f"{where}.")
    ranges = tuple(_range(r, f"{where}.ranges[{i}]", ident) for i, r in enumerate(listed_ranges))
    versions = _list(entry, "versions", ident, f"{where}.")
    return AffectedPackage(
        ecosystem=ecosystem,
        name=normalise_name(name) if ecosystem == "PyPI" else name,
        ranges=ranges,
        versions=frozenset(_version_text(v, f"{where}.versions[{i}]", ident) for i, v in enumerate(versions)),
        fixed=_fixed_versions(ranges),
    )


def _range(value: Any, where: str, ident: str) -> Range:
    if not isinstance(value, dict) or not isinstance(value.get("type"), str):
        raise ReportError(f"{ident}: field {where!r} must be an object with a 'type'")
    events = []
    for i, event in enumerate(_list(value, "events", ident, f"{where}.")):
        if not isinstance(event, dict):
            raise ReportError(f"{ident}: field '{where}.events[{i}]' must be an object")
        for kind in _EVENT_KINDS:
            if kind in event:
                events.append((kind, _version_text(event[kind], f"{where}.events[{i}].{kind}", ident)))
    return Range(type=value["type"], events=tuple(events))


def _fixed_versions(ranges: Iterable[Range]) -> tuple[str, ...]:
    found = [v for r in ranges if r.type in _VERSIONED_RANGE_TYPES for kind, v in r.events if kind == "fixed"]
    return tuple(dict.fromkeys(found))


# --- loaders -------------------------------------------------------------------------------


def load_any(path: str | Path, *, errors: Errors = "raise", name: str | None = None) -> Iterator[Advisory]:
    """Whatever an operator points at: a directory, an OSV zip export, a JSON or a YAML file.
    Errors name the file ``name`` when given (an upload's own name: never the server's
    scratch path), else its path."""
    path = Path(path)
    if path.is_dir():
        return load_directory(path, errors=errors)
    label = name or str(path)
    if not path.is_file():
        raise ReportError(f"{label}: no such file or directory")
    suffix = path.suffix.lower()
    if suffix == ".zip" or (suffix not in (".json", ".yaml", ".yml") and zipfile.is_zipfile(path)):
        return load_zip(path, errors=errors, name=name)
    if suffix == ".json":
        return load_json_file(path, errors=errors, name=name)
    if suffix in (".yaml", ".yml"):
        return load_yaml_file(path, errors=errors, name=name)
    raise ReportError(f"{label}: not a directory, a .zip, a .json or a .yaml file of OSV advisories")


def load_json_file(path: str | Path, *, errors: Errors = "raise", name: str | None = None) -> Iterator[Advisory]:
    """One OSV object, or a list of them, in one JSON file."""
    path = Path(path)
    document = _read(path, json.loads, errors, name or str(path))
    if document is not _UNREADABLE:
        yield from _advisories(document, name or str(path), errors)


def load_yaml_file(path: str | Path, *, errors: Errors = "raise", name: str | None = None) -> Iterator[Advisory]:
    """One PyPA advisory-database file: OSV written as YAML (a list of objects is accepted too)."""
    path = Path(path)
    document = _read(path, lambda text: _json_safe(yaml_load(text)), errors, name or str(path))
    if document is not _UNREADABLE:
        yield from _advisories(document, name or str(path), errors)


def load_directory(path: str | Path, *, errors: Errors = "raise") -> Iterator[Advisory]:
    """Every *.json, *.yaml and *.yml below ``path`` in a stable order. Hidden entries
    (``.git``, ``.github`` workflows) are not advisories and are skipped."""
    root = Path(path)
    if not root.is_dir():
        raise ReportError(f"{root}: not a directory")
    loaders = {".json": load_json_file, ".yaml": load_yaml_file, ".yml": load_yaml_file}
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            loader = loaders.get(Path(name).suffix.lower())
            if loader and not name.startswith("."):
                yield from loader(Path(folder) / name, errors=errors)


def load_zip(path: str | Path, *, errors: Errors = "raise", name: str | None = None) -> Iterator[Advisory]:
    """The OSV ``all.zip`` export, one member at a time; non-.json members are skipped and
    members over MAX_MEMBER_BYTES are refused so a hostile archive cannot exhaust memory."""
    path = Path(path)
    label = name or str(path)
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise ReportError(f"{label}: not a readable zip file ({exc})") from None
    with archive:
        for info in archive.infolist():
            if info.is_dir() or not info.filename.lower().endswith(".json"):
                continue
            source = f"{label}:{info.filename}"
            document = _read_member(archive, info, source, errors)
            if document is not _UNREADABLE:
                yield from _advisories(document, source, errors)


_UNREADABLE = object()


def _read(path: Path, decode: Callable[[str], Any], errors: Errors, label: str) -> Any:
    """Read and decode one file; a failure is reported against the file and yields nothing."""
    try:
        return decode(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError) as exc:
        _report(ReportError(f"{label}: cannot read: {_one_line(exc)}"), errors)
        return _UNREADABLE


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, source: str, errors: Errors) -> Any:
    if info.file_size > MAX_MEMBER_BYTES:
        _report(ReportError(f"{source}: {info.file_size} bytes is over the {MAX_MEMBER_BYTES} byte limit"), errors)
        return _UNREADABLE
    try:
        with archive.open(info) as member:
            data = member.read(MAX_MEMBER_BYTES + 1)
        if len(data) > MAX_MEMBER_BYTES:
            raise ValueError(f"more than {MAX_MEMBER_BYTES} bytes")
        return json.loads(data)
    except (OSError, ValueError, RuntimeError, zipfile.BadZipFile) as exc:  # RuntimeError: encrypted member
        _report(ReportError(f"{source}: cannot read: {_one_line(exc)}"), errors)
        return _UNREADABLE


def _advisories(document: Any, source: str, errors: Errors) -> Iterator[Advisory]:
    """Parse each object of a decoded document; errors name the source (and index in a list)."""
    items = document if isinstance(document, list) else [document]
    for i, item in enumerate(items):
        where = f"{source}[{i}]" if isinstance(document, list) else source
        try:
            advisory = parse_advisory(item)
        except ReportError as exc:
            _report(ReportError(f"{where}: {exc}"), errors)
            continue
        yield advisory


def _report(error: ReportError, errors: Errors) -> None:
    if errors == "raise":
        raise error
    errors.append(error)


def _json_safe(value: Any) -> Any:
    """YAML turns unquoted timestamps into datetimes; ``raw`` must stay JSON-serialisable."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())
