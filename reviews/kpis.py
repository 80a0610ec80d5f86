"""The performance KPIs Warden knows: measured by the harness (reviews/checks/performance.py) or
posted by a CI job (reviews/importers/performance.py). Pure: no Django."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Kpi:
    key: str
    title: str
    unit: str
    noise: float  # differences smaller than this are never a regression
    higher_is_better: bool = False
    remediation: str = ""


KPIS = {
    kpi.key: kpi
    for kpi in [
        Kpi("startup_ms", "Cold startup", "ms", 10.0, remediation="Import heavy modules lazily, do no I/O at import."),
        Kpi("peak_rss_mb", "Peak memory (RSS)", "MB", 2.0, remediation="Stream data instead of loading it whole."),
        Kpi("cpu_ms", "CPU time to start", "ms", 10.0, remediation="Move work out of import and construction."),
        Kpi("latency_p50_ms", "Latency p50", "ms", 0.5, remediation="Profile the benchmark's hot path."),
        Kpi("latency_p95_ms", "Latency p95", "ms", 0.5, remediation="Look for contention under concurrency."),
        Kpi("latency_p99_ms", "Latency p99", "ms", 0.5, remediation="Look for locks and GC pauses in the tail."),
        Kpi(
            "throughput_rps",
            "Throughput",
            "calls/s",
            1.0,
            higher_is_better=True,
            remediation="Release the GIL or shared locks; avoid per-call setup.",
        ),
    ]
}


def describe_change(kpi: Kpi | None, worse_percent: float) -> tuple[str, str]:
    """How the value moved and what that means, in words that agree for either direction of
    KPI. ``worse_percent`` is stored positive-is-worse (PerformanceMetric.change_percent), so a
    throughput drop of 43.2 % reads "\u221243.2 %" (a minus sign) and "43.2 % worse", and a
    latency rise of 10 % reads "+10 %" and "10 % worse"."""
    if worse_percent == 0:
        return "0 %", "no change"
    moved = -worse_percent if kpi is not None and kpi.higher_is_better else worse_percent
    sign = "+" if moved > 0 else "\u2212"
    return f"{sign}{abs(moved):g} %", f"{abs(worse_percent):g} % {'worse' if worse_percent > 0 else 'better'}"
