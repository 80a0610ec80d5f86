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
