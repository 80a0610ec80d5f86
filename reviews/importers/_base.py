"""Shapes and helpers shared by the report importers.

Importers are pure functions from a decoded JSON document to a ``ParsedReport``: no Django, no
database, no I/O. Everything wrong with a report is a ``ReportError`` whose message names the
place (``runs[0].results[12].level``) so a CI job's author can fix the job without reading Warden.
"""

import json
import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from governance.text import SURROGATE_ESCAPE, lone_surrogate
from reviews.findings_data import SEVERITIES, FindingData, ReportError

TITLE_MAX = 300  # Finding.title is a CharField(max_length=300)


@dataclass(frozen=True)
class Component:
    """One package an SBOM lists. ``ecosystem`` uses OSV's names ("PyPI", "npm", ...) so the
    advisory matcher can look components up without knowing about purls."""

    name: str
    version: str = ""
    purl: str = ""
    ecosystem: str = ""
    bom_ref: str = ""
    type: str = ""  # CycloneDX component type: library, application, framework, ...


@dataclass(frozen=True)
class VexStatement:
    """What a producer says about one vulnerability in its own product (CycloneDX ``analysis``).

    ``triage`` is the Warden triage state the statement maps to; ``state`` and ``justification``
    are kept as written so a reviewer sees the producer's own words."""

    vulnerability_id: str
    triage: str  # "false_positive" | "fixed" | "open"
    state: str  # CycloneDX analysis.state as written: not_affected, exploitable, ...
    justification: str = ""
    detail: str = ""
    response: tuple[str, ...] = ()
    refs: tuple[str, ...] = ()  # affects[].ref as written
    purls: tuple[str, ...] = ()  # the affected components' purls, where the refs resolve to one
    aliases: tuple[str, ...] = ()  # other ids of the same vulnerability (references[].id)

    @property
    def reason(self) -> str:
        """One line for ``FindingData.triage_reason``: who said what, in their words."""
        parts = [f"VEX {self.state}"]
        if self.justification:
            parts.append(self.justification)
        if self.detail:
            parts.append(self.detail)
        return ": ".join(parts)


@dataclass
class ParsedReport:
    """Everything one report says, as plain data for the integrator to store."""

    format: str  # "sarif" | "cyclonedx" | "pip-audit" | "performance"
    tool: str
    tool_version: str = ""
    findings: list[FindingData] = field(default_factory=list)
    components: list[Component] = field(default_factory=list)
    vex: list[VexStatement] = field(default_factory=list)
    summary: dict = field(default_factory=dict)
    metrics: list[dict] = field(default_factory=list)  # {"kpi", "value", "concurrency"}: performance reports


class _NotJsonConstant(ValueError):
    pass


def _reject_constant(name: str) -> float:
    """NaN and Infinity are Python extensions, not JSON: a report carrying them came from a
    broken serialiser, and a NaN score would compare false against every threshold."""
    raise _NotJsonConstant(f"{name} is not a JSON value")


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def load_json(content: bytes) -> object:
    """Decode a report. UTF-8 (with or without BOM), UTF-16 and UTF-32 are accepted as RFC 8259
    and ``json.loads`` accept them; every failure is a ReportError saying where."""
    try:
        text = content.decode(json.detect_encoding(content))
    except UnicodeDecodeError as exc:
        raise ReportError(f"not JSON: the report is not valid {exc.encoding} text (byte {exc.start})") from None
    try:
        document = _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        raise ReportError(f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except _NotJsonConstant as exc:
        raise ReportError(f"not JSON: {exc}") from None
    except RecursionError:
        raise ReportError("not JSON Warden can read: it is nested too deeply") from None
    except ValueError as exc:  # e.g. an integer with more digits than int() allows
        raise ReportError(f"not JSON Warden can read: {exc}") from None
    if SURROGATE_ESCAPE.search(text) and (bad := lone_surrogate(document)) is not None:
        raise ReportError(f"not JSON Warden can read: {show(bad)} holds a lone UTF-16 surrogate, which is not text")
    return document


def show(value: object, limit: int = 60) -> str:
    """A short, safe rendering of a bad value for an error message."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def type_name(value: object) -> str:
    """JSON's name for a decoded value's type, as a CI author thinks of it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def expect(value: object, kind: type, where: str, what: str) -> None:
    """Raise a ReportError unless ``value`` is of the JSON type ``kind`` (bools are not numbers)."""
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise ReportError(f"{where} must be {what}, not {type_name(value)}")


def _at(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def optional_list(parent: dict, key: str, where: str, what: str = "an array") -> list:
    """``parent[key]`` when it is an array, [] when absent or null, else a ReportError (an empty
    object or string where an array belongs is an error too, not "nothing")."""
    value = parent.get(key)
    if value is None:
        return []
    expect(value, list, _at(where, key), what)
    return value


def optional_dict(parent: dict, key: str, where: str) -> dict:
    """``parent[key]`` when it is an object, {} when absent or null, else a ReportError."""
    value = parent.get(key)
    if value is None:
        return {}
    expect(value, dict, _at(where, key), "an object")
    return value


def optional_str(parent: dict, key: str, where: str) -> str:
    """``parent[key]`` when it is a string, "" when absent or null, else a ReportError."""
    value = parent.get(key)
    if value is None:
        return ""
    if type(value) is not str:
        raise ReportError(f"{_at(where, key)} must be a string, not {type_name(value)}")
    return value


def str_list(parent: dict, key: str, where: str) -> list[str]:
    """``parent[key]`` when it is an array of strings, [] when absent or null, else a ReportError."""
    value = parent.get(key)
    if value is None:
        return []
    expect(value, list, f"{where}.{key}", "an array of strings")
    for index, item in enumerate(value):
        if type(item) is not str:
            raise ReportError(f"{where}.{key}[{index}] must be a string, not {type_name(item)}")
    return value


def severity_from_score(score: object, where: str) -> str:
    """A CVSS-like 0-10 score to a Warden severity, on GitHub code scanning's bands:
    >= 9 critical, >= 7 high, >= 4 medium, > 0 low, 0 info."""
    if isinstance(score, str):
        try:
            number = float(score)
        except ValueError:
            raise ReportError(f"{where}: {show(score)} is not a number") from None
    elif isinstance(score, int | float) and not isinstance(score, bool):
        number = float(score)
    else:
        raise ReportError(f"{where} must be a number, not {type_name(score)}")
    if not math.isfinite(number) or not 0 <= number <= 10:
        raise ReportError(f"{where}: {show(score)} is not a score from 0 to 10")
    if number >= 9:
        return "critical"
    if number >= 7:
        return "high"
    if number >= 4:
        return "medium"
    return "low" if number > 0 else "info"


# purl type -> OSV ecosystem name (https://ossf.github.io/osv-schema/#affectedpackage-field)
_ECOSYSTEMS = {
    "pypi": "PyPI",
    "npm": "npm",
    "maven": "Maven",
    "golang": "Go",
    "cargo": "crates.io",
    "gem": "RubyGems",
    "nuget": "NuGet",
    "composer": "Packagist",
    "hex": "Hex",
    "pub": "Pub",
    "swift": "SwiftURL",
    "cocoapods": "CocoaPods",
    "conan": "ConanCenter",
    "github": "GitHub Actions",
    "deb": "Debian",
    "apk": "Alpine",
}


def purl_ecosystem(purl: str) -> str:
    """The ecosystem a purl names, in OSV's spelling; the purl type itself when OSV has no name
    for it; "" when the string is not a purl."""
    if not purl.lower().startswith("pkg:"):
        return ""
    kind = purl[4:].lstrip("/").partition("/")[0].lower()
    return _ECOSYSTEMS.get(kind, kind)


def clip_title(text: str) -> str:
    """First line of a text, cut to fit ``Finding.title``."""
    line = text.strip().partition("\n")[0].strip()
    return line if len(line) <= TITLE_MAX else line[: TITLE_MAX - 1] + "\u2026"


def summarise(findings: list[FindingData], **extra: object) -> dict:
    """Counts every importer reports the same way, plus format-specific extras."""
    return summary_of(Counter(finding.severity for finding in findings), **extra)


def summary_of(by_severity: Mapping[str, int], **extra: object) -> dict:
    """``summarise`` from counts by severity (a streamed report's, counted as it was stored)."""
    counts = dict.fromkeys(SEVERITIES, 0) | dict(by_severity)
    return {"findings": sum(counts.values()), "by_severity": counts, **extra}
