"""Warden's performance report: figures a CI job measured itself (a load test, a startup probe),
posted as JSON. There is no standard format for these; this one is version 1 of Warden's own::

    {"warden_performance": 1,
     "tool": "locust", "tool_version": "2.31.8",
     "metrics": [{"kpi": "startup_ms", "value": 240.0},
                 {"kpi": "latency_p95_ms", "value": 18.2, "concurrency": 16},
                 {"kpi": "throughput_rps", "value": 850, "concurrency": 16}]}

``kpi`` is one of the KPIs in reviews/kpis.py; ``value`` a finite, non-negative number in that
KPI's unit; ``concurrency`` (threads or users, optional) a positive integer. The integrator
judges the figures against the version's budget (reviews/reports.py); this module only reads.
"""

from reviews.findings_data import ReportError
from reviews.kpis import KPIS

from ._base import ParsedReport, expect, optional_str, show, type_name

VERSION = 1
MAX_METRICS = 1000


def looks_like(document: object) -> bool:
    return isinstance(document, dict) and "warden_performance" in document


def parse(document: object) -> ParsedReport:
    expect(document, dict, "the report", "a JSON object")
    assert isinstance(document, dict)
    if document.get("warden_performance") != VERSION:
        found = show(document.get("warden_performance"))
        raise ReportError(f"warden_performance must be {VERSION} (the format's version), not {found}")
    metrics = document.get("metrics")
    expect(metrics, list, "metrics", "an array")
    assert isinstance(metrics, list)
    if not metrics:
        raise ReportError("metrics is empty: a performance report needs at least one figure")
    if len(metrics) > MAX_METRICS:
        raise ReportError(f"metrics has {len(metrics)} entries; at most {MAX_METRICS}")
    parsed = [_metric(raw, f"metrics[{index}]") for index, raw in enumerate(metrics)]
    seen: set[tuple[str, int | None]] = set()
    for index, metric in enumerate(parsed):
        key = (metric["kpi"], metric["concurrency"])
        if key in seen:
            raise ReportError(f"metrics[{index}] repeats {metric['kpi']} at concurrency {metric['concurrency']}")
        seen.add(key)
    return ParsedReport(
        format="performance",
        tool=optional_str(document, "tool", "") or "performance report",
        tool_version=optional_str(document, "tool_version", ""),
        metrics=parsed,
        summary={"metrics": len(parsed)},
    )


def _metric(raw: object, where: str) -> dict:
    expect(raw, dict, where, "an object")
    assert isinstance(raw, dict)
    kpi = raw.get("kpi")
    if kpi not in KPIS:
        raise ReportError(f"{where}.kpi must be one of {', '.join(KPIS)}, not {show(kpi)}")
    value = raw.get("value")
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise ReportError(f"{where}.value must be a number, not {type_name(value)}")
    if not 0 <= value <= 1e12:
        raise ReportError(f"{where}.value must be between 0 and 1e12 {KPIS[kpi].unit}, not {show(value)}")
    concurrency = raw.get("concurrency")
    if concurrency is not None:
        expect(concurrency, int, f"{where}.concurrency", "an integer")
        assert isinstance(concurrency, int)
        if not 1 <= concurrency <= 32767:
            raise ReportError(f"{where}.concurrency must be between 1 and 32767, not {concurrency}")
    return {"kpi": kpi, "value": float(value), "concurrency": concurrency}
