"""The registry of automated checks.

A check is a function registered under a key (``eligibility.manifest``, ``security.bandit``,
...). It receives a ``CheckContext`` (the version, its manifest, the extracted tree) and
returns a ``CheckOutcome`` (a verdict, findings, a summary, the tool's raw report). Stages
list the keys they run; the engine (reviews/checks/engine.py) creates a CheckRun per key
when the stage starts and runs it in a django-q2 worker.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from reviews.findings_data import FindingData


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


@dataclass(frozen=True)
class CheckSpec:
    key: str
    title: str
    tool: str
    run: Callable[[CheckContext], CheckOutcome]


REGISTRY: dict[str, CheckSpec] = {}


def register(key: str, *, title: str, tool: str = "warden"):
    """Decorator: make ``run`` available to stages under ``key``."""

    def decorate(run: Callable[[CheckContext], CheckOutcome]) -> Callable[[CheckContext], CheckOutcome]:
        if key in REGISTRY:
            raise ValueError(f"Check {key!r} is registered twice.")
        REGISTRY[key] = CheckSpec(key=key, title=title, tool=tool, run=run)
        return run

    return decorate
