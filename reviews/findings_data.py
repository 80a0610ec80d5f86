"""The plain shape every check and report importer produces, before it becomes rows.

Checks (reviews/checks/), report importers (reviews/importers/) and the advisory matcher
(reviews/advisories/) return ``FindingData``; the check engine turns them into
``Finding`` rows in one transaction and computes their fingerprints.
"""

import hashlib
import re
from dataclasses import dataclass, field

SEVERITIES = ("critical", "high", "medium", "low", "info")
KINDS = ("eligibility", "security", "capability", "behaviour", "dependency", "quality", "performance")


class ReportError(ValueError):
    """A report or tool output that cannot be read. The message says what is wrong and
    where, in words a CI job's author can act on."""


@dataclass(frozen=True)
class FindingData:
    rule_id: str
    title: str
    severity: str  # one of SEVERITIES
    kind: str = "security"  # one of KINDS
    message: str = ""
    path: str = ""  # relative to the plugin's root, forward slashes
    line: int | None = None
    cwe: str = ""  # "CWE-78", or ""
    tool: str = ""
    snippet: str = ""  # the offending code, when known: part of the fingerprint
    data: dict = field(default_factory=dict)  # tool-specific detail (advisory ids, confidence, ...)
    triage: str = ""  # an initial triage state when the source says so (VEX), else ""
    triage_reason: str = ""

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity {self.severity!r} is not one of {SEVERITIES}")
        if self.kind not in KINDS:
            raise ValueError(f"kind {self.kind!r} is not one of {KINDS}")

    @property
    def fingerprint(self) -> str:
        """Stable across versions: the rule, the location without line numbers or version
        directories, and the code itself with whitespace folded."""
        location = normalise_path(self.path)
        code = " ".join(self.snippet.split())
        material = "\x1f".join([self.tool, self.rule_id, location, code or self.message])
        return hashlib.sha256(material.encode()).hexdigest()

    @property
    def location_key(self) -> str:
        return location_key(tool=self.tool, rule_id=self.rule_id, path=self.path, line=self.line)


# Tools that name themselves differently in their SARIF than Warden's checks do, casefolded.
TOOL_FAMILIES = {"semgrep oss": "semgrep", "semgrep pro": "semgrep"}


def tool_family(tool: str) -> str:
    """One name per tool: bandit's SARIF driver says "Bandit", Warden's own check "bandit"."""
    name = " ".join(tool.casefold().split())
    return TOOL_FAMILIES.get(name, name)


def location_key(*, tool: str, rule_id: str, path: str, line: int | None) -> str:
    """One place as any source reports it: tool family, rule, normalised path and line. Findings
    of several sources with one key are one finding for counting and display. Unlike the
    fingerprint it ignores the code and message, and it has no namespace per source, so it
    must never decide an exemption or a triage. "" for a finding without a file: it is not merged."""
    location = normalise_path(path)
    if not location:
        return ""
    material = "\x1f".join([tool_family(tool), rule_id.strip(), location, str(line or "")])
    return hashlib.sha256(material.encode()).hexdigest()


_VERSIONED_ROOT = re.compile(r"^[^/]+-\d+(\.\d+)*[^/]*/")


def normalise_path(path: str) -> str:
    """``acme_exporter-1.4.0/acme_exporter/x.py`` and ``./acme_exporter/x.py`` are one place."""
    path = path.replace("\\", "/")
    while path.startswith("./"):
        path = path[2:]
    path = path.lstrip("/")
    return _VERSIONED_ROOT.sub("", path)


UNISOLATED = (
    "bubblewrap is not available on this worker and WARDEN_SANDBOX_ALLOW_UNISOLATED is on (a development setting): "
)


def unisolated_finding(*, kind: str, tool: str, consequence: str, cwe: str = "") -> FindingData:
    """The plugin ran without the sandbox (development only): a high finding of ``kind``, so the
    gate fails and the run is done again on a worker with bubblewrap. ``consequence`` says what
    that means for the check's results."""
    return FindingData(
        rule_id=f"{kind}.unisolated",
        title="Ran without isolation",
        severity="high",
        kind=kind,
        message=UNISOLATED + consequence,
        cwe=cwe,
        tool=tool,
        snippet="unisolated",
    )
