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


_VERSIONED_ROOT = re.compile(r"^[^/]+-\d+(\.\d+)*[^/]*/")


def normalise_path(path: str) -> str:
    """``acme_exporter-1.4.0/acme_exporter/x.py`` and ``./acme_exporter/x.py`` are one place."""
    path = path.replace("\\", "/")
    while path.startswith("./"):
        path = path[2:]
    path = path.lstrip("/")
    return _VERSIONED_ROOT.sub("", path)
