"""The automated checks: what a check receives and returns.

A check is a function registered under a key (``eligibility.manifest``, ``security.bandit``,
...) in the registry, which lives at the base (governance/checks.py) so that a stage can be
validated there. It receives a ``CheckContext`` (the version, its manifest, the extracted
tree) and returns a ``CheckOutcome`` (a verdict, findings, a summary, the tool's raw report).
Stages list the keys they run; the engine (reviews/checks/engine.py) creates a CheckRun per
key when the stage starts and runs it in a django-q2 worker.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from governance.checks import REGISTRY, CheckSpec, register
from reviews.findings_data import FindingData

__all__ = ["REGISTRY", "CheckContext", "CheckOutcome", "CheckSpec", "register"]


@dataclass(frozen=True)
class CheckContext:
    version_id: int
    plugin_id: int
    manifest: dict
    root: Path  # the extracted archive, read-only by convention
    progress: Callable[[int], None] = lambda percent: None


@dataclass
class CheckOutcome:
    passed: bool
    findings: Iterable[FindingData] = ()
    summary: dict = field(default_factory=dict)
    report: bytes = b""
    report_name: str = "report.json"
    tool_version: str = ""
    metrics: list[dict] = field(default_factory=list)  # PerformanceMetric fields, for measuring checks
