"""Performance KPIs, budgets and regressions: what the harness's figures mean.

The measuring itself is reviews/checks/performance.py; this module is pure apart from
``budget_for``, which reads the admin's budgets.
"""

import statistics
from dataclasses import dataclass, field

from governance.models import HostPlatform

from .findings_data import FindingData
from .kpis import KPIS, Kpi
from .models import PerformanceBudget

# Budgets apply to these KPIs; latency and throughput at peak concurrency.
BUDGETED = ("startup_ms", "peak_rss_mb", "cpu_ms", "latency_p95_ms", "throughput_rps")
# HostPlatform.resource_limits key -> (budget KPI, factor)
HOST_LIMITS = {
    "startup_ms": ("startup_ms", 1.0),
    "memory_mb": ("peak_rss_mb", 1.0),
    "cpu_seconds": ("cpu_ms", 1000.0),
    "latency_p95_ms": ("latency_p95_ms", 1.0),
    "throughput_rps": ("throughput_rps", 1.0),
}


@dataclass(frozen=True)
class Budget:
    limits: dict[str, float]
    regression_percent: float = 20.0
    typical_threads: int = 4
    peak_threads: int = 16
    source: str = "defaults"


def budget_for(*, category: str) -> Budget:
    """The category's budget on the default host platform, else the host's blank-category
    budget, else the host's resource limits."""
    host = HostPlatform.objects.filter(is_default=True).first()
    if host is None:
        return Budget(limits={})
    row = (
        PerformanceBudget.objects.filter(host_platform=host, category__in=[category, ""])
        .order_by("-category")  # the category's own row sorts before the blank default
        .first()
    )
    if row is None:
        limits = {
            kpi: float(host.resource_limits[key]) * factor
            for key, (kpi, factor) in HOST_LIMITS.items()
            if isinstance(host.resource_limits.get(key), int | float)
        }
        return Budget(limits=limits, source=f"resource limits of {host.name}")
    limits = {kpi: getattr(row, kpi) for kpi in BUDGETED if getattr(row, kpi) is not None}
    return Budget(
        limits=limits,
        regression_percent=row.regression_percent,
        typical_threads=row.typical_threads,
        peak_threads=row.peak_threads,
        source=str(row),
    )


@dataclass
class Measured:
    """One KPI of this version, and of the baseline when there is one."""

    kpi: str
    value: float
    concurrency: int | None = None
    baseline: float | None = None
    budget: float | None = None
    extra: dict = field(default_factory=dict)

    @property
    def definition(self) -> Kpi:
        return KPIS[self.kpi]

    @property
    def within_budget(self) -> bool | None:
        if self.budget is None:
            return None
        return self.value >= self.budget if self.definition.higher_is_better else self.value <= self.budget

    @property
    def change_percent(self) -> float | None:
        """How much worse than the baseline, in percent (negative: better)."""
        if self.baseline is None or self.baseline == 0:
            return None
        worse = self.baseline - self.value if self.definition.higher_is_better else self.value - self.baseline
        return round(worse / self.baseline * 100, 1) + 0.0  # + 0.0: never -0.0

    def regressed(self, threshold: float) -> bool:
        change = self.change_percent
        return (
            change is not None
            and change > threshold
            and abs(self.value - (self.baseline or 0)) >= self.definition.noise
        )


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile: a latency that some call really had."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * pct // 100))
    return ordered[int(rank) - 1]


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def judge(measured: list[Measured], budget: Budget, *, baseline_label: str) -> list[FindingData]:
    """A finding per budget breach and per regression beyond the budget's percentage."""
    findings = []
    for item in measured:
        kpi, at = item.definition, f" at {item.concurrency} threads" if item.concurrency else ""
        if item.within_budget is False and item.budget:
            limit = "at least" if kpi.higher_is_better else "at most"
            ratio = item.budget / max(item.value, 1e-9) if kpi.higher_is_better else item.value / item.budget
            findings.append(
                _finding(
                    "performance.budget",
                    "high" if ratio > 2 else "medium",
                    f"{kpi.title}{at} is {item.value:g} {kpi.unit}; the budget is {limit} {item.budget:g}",
                    item,
                    budget,
                )
            )
        if item.regressed(budget.regression_percent):
            findings.append(
                _finding(
                    "performance.regression",
                    "medium",
                    f"{kpi.title}{at} is {item.change_percent:g}% worse than {baseline_label} "
                    f"({item.value:g} vs {item.baseline:g} {kpi.unit})",
                    item,
                    budget,
                )
            )
    return findings


def _finding(rule: str, severity: str, title: str, item: Measured, budget: Budget) -> FindingData:
    kpi = item.definition
    return FindingData(
        rule_id=rule,
        title=title,
        severity=severity,
        kind="performance",
        message=f"Remediation: {kpi.remediation} Budget from {budget.source}; "
        f"regression threshold {budget.regression_percent:g}%.",
        tool="warden-harness",
        snippet=f"{rule}:{item.kpi}:{item.concurrency or ''}",
        data={
            "kpi": item.kpi,
            "value": item.value,
            "budget": item.budget,
            "baseline": item.baseline,
            "change_percent": item.change_percent,
            "concurrency": item.concurrency,
            "remediation": kpi.remediation,
        },
    )
