"""The performance harness (``performance.harness``): cold startup, memory, CPU, and latency and
throughput under concurrent load, against the budget, beside the last approved version.

1. Startup: ``startup_runs`` fresh sandboxed processes per version, each importing the plugin
   and constructing its entrypoint. Startup is the process's wall time (what a host waits for),
   CPU the user+system time of every process of the run (the subprocesses the plugin started
   too, finished or not), memory the peak RSS summed over the harness and those subprocesses,
   all read by the runner from outside (reviews/sandbox/measure.py); medians across runs.
2. Load, when plugin.toml names ``[performance] benchmark``: a process per round calls it
   ``warmup_calls`` times, then ``calls_per_round`` times from a pool of the budget's typical and
   then peak thread count; latency percentiles over every call, throughput per round (median).
3. The last approved version of the same plugin is measured in the same run, its runs
   interleaved with this version's in alternating order (A B, B A, ...), so what the machine
   was doing meanwhile, and any advantage of going first, weighs on both alike. A KPI worse
   by more than the budget's percentage, and by more than the KPI's noise floor, is a
   regression.
"""

import json
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings

from reviews.findings_data import FindingData, unisolated_finding
from reviews.performance import KPIS, Budget, Measured, budget_for, judge, median, percentile
from reviews.sandbox.environment import plugin_environment
from reviews.sandbox.runner import SandboxRun, isolation_available, sandbox_run
from submissions.models import PluginVersion

from . import CheckContext, CheckOutcome, register
from .eligibility import native_declared
from .engine import APPROVED_STATES, artifact_tree

TOOL = "warden-harness"


@dataclass
class Subject:
    label: str
    root: Path
    manifest: dict
    version_id: int
    environment: Path = Path()
    startup_ms: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)
    rss_kb: list[float] = field(default_factory=list)
    latencies: dict[int, list[float]] = field(default_factory=dict)
    throughput: dict[int, list[float]] = field(default_factory=dict)
    failure: SandboxRun | None = None
    forged: list[str] = field(default_factory=list)  # what its process reported that the outside contradicts

    @property
    def benchmark(self) -> str:
        return self.manifest.get("performance", {}).get("benchmark", "")

    def clear(self) -> None:
        for samples in (self.startup_ms, self.cpu_ms, self.rss_kb, self.latencies, self.throughput, self.forged):
            samples.clear()

    def sandbox(self, mode: str, **extra) -> SandboxRun:
        return sandbox_run(
            mode=mode,
            plugin_root=self.root,
            environment=self.environment,
            entrypoint=self.manifest["plugin"]["entrypoint"],
            benchmark=self.benchmark,
            variables=self.manifest["permissions"]["environment"],
            native=native_declared(self.manifest),
            **extra,
        )


class HarnessFailed(Exception):
    def __init__(self, subject: Subject, run: SandboxRun, *, forged: bool = False) -> None:
        if run.limit:
            reason = f"stopped by {run.limit_text}"
        elif run.tampered or forged:
            reason = "its report channel carried figures the harness did not write"
        else:
            reason = f"exited with status {run.exit_code}"
        super().__init__(reason)
        subject.failure = run
        self.subject = subject
        self.reason = reason


@register("performance.harness", title="Performance harness", tool=TOOL)
def performance_harness(ctx: CheckContext) -> CheckOutcome:
    budget = budget_for(category=ctx.manifest["plugin"]["category"])
    this = Subject("this version", ctx.root, ctx.manifest, ctx.version_id)
    subjects = [this]
    baseline = baseline_subject(ctx)
    if baseline is not None:
        subjects.append(baseline)
    for subject in subjects:
        subject.environment = plugin_environment(requirements=subject.manifest["dependencies"]["requirements"])
    try:
        measure(subjects, budget, progress=ctx.progress)
    except HarnessFailed as failed:
        if failed.subject is this:
            return _did_not_start(this, budget, failed.reason)
        subjects.remove(failed.subject)  # the old version no longer starts: measure this one alone
        baseline = None
        this.clear()
        try:
            measure(subjects, budget, progress=ctx.progress)
        except HarnessFailed as failed_again:
            return _did_not_start(this, budget, failed_again.reason)
    measured = kpis(this, baseline, budget)
    findings = judge(measured, budget, baseline_label=baseline.label if baseline else "")
    if this.forged:
        findings.append(_forged_finding(this))
    if this.failure is None and not isolation_available():
        findings.append(
            unisolated_finding(
                kind="performance",
                tool=TOOL,
                consequence="the plugin ran as an ordinary process of the worker's machine. Its figures were "
                "measured, but nothing contained it; re-run on a worker with bubblewrap.",
            )
        )
    return CheckOutcome(
        passed=not findings,
        findings=findings,
        summary={
            "budget": budget.source,
            "baseline": baseline.label if baseline else None,
            "regression_percent": budget.regression_percent,
            "concurrency": [budget.typical_threads, budget.peak_threads] if this.benchmark else [],
        },
        metrics=[_metric(item, budget, baseline) for item in measured],
        report=json.dumps({"budget": budget.limits, "samples": [_samples(s) for s in subjects]}, indent=1).encode(),
        report_name="performance.json",
        tool_version="warden-harness 1",
    )


def _samples(subject: Subject) -> dict:
    """Every raw figure behind the medians and percentiles, for whoever doubts them."""
    return {
        "label": subject.label,
        "version": subject.version_id,
        "startup_ms": [round(v, 2) for v in subject.startup_ms],
        "cpu_ms": [round(v, 2) for v in subject.cpu_ms],
        "peak_rss_kb": subject.rss_kb,
        "latencies_ms": {str(k): [round(v, 3) for v in values] for k, values in subject.latencies.items()},
        "throughput_rps": {str(k): [round(v, 1) for v in values] for k, values in subject.throughput.items()},
    }


def baseline_subject(ctx: CheckContext) -> Subject | None:
    previous = (
        PluginVersion.objects.filter(plugin_id=ctx.plugin_id, status__in=APPROVED_STATES)
        .exclude(pk=ctx.version_id)
        .order_by("-decided_at", "-pk")
        .first()
    )
    if previous is None or not previous.artifact:
        return None
    return Subject(f"{previous.version} (last approved)", artifact_tree(previous), previous.manifest, previous.pk)


def measure(subjects: list[Subject], budget: Budget, *, progress) -> None:
    plan = settings.WARDEN_PERFORMANCE
    loaded = [s for s in subjects if s.benchmark]
    steps = plan["startup_runs"] * len(subjects) + plan["rounds"] * len(loaded)
    done = 0
    for turn in range(plan["startup_runs"]):
        for subject in _in_turn(subjects, turn):
            run = subject.sandbox("startup")
            if run.result is None or run.tampered:
                raise HarnessFailed(subject, run)  # a tampered run is reported as such
            # every figure from outside the plugin's process: the wall clock and the kernel's /proc
            subject.startup_ms.append(run.wall_ms)
            subject.cpu_ms.append(run.cpu_ms)
            subject.rss_kb.append(run.peak_rss_kb)
            subject.forged += [f"startup run {turn + 1}: {what}" for what in run.forged]
            done += 1
            progress(done * 100 // steps)
    levels = sorted({budget.typical_threads, budget.peak_threads})
    load = {"warmup": plan["warmup_calls"], "rounds": 1, "calls": plan["calls_per_round"], "concurrency": levels}
    for turn in range(plan["rounds"]):
        for subject in _in_turn(loaded, turn):
            run = subject.sandbox("load", load=load)
            rounds = run.rounds  # driven and timed by the runner, outside the sandbox
            if run.result is None or run.tampered:
                raise HarnessFailed(subject, run)
            subject.forged += [f"load run {turn + 1}: {what}" for what in run.forged]
            if sorted(r["threads"] for r in rounds) != levels or any(
                len(r["latencies_ms"]) != plan["calls_per_round"] for r in rounds
            ):
                raise HarnessFailed(subject, run, forged=True)  # not every call the runner asked for was answered
            subject.rss_kb.append(run.peak_rss_kb)
            for record in rounds:
                threads = record["threads"]
                subject.latencies.setdefault(threads, []).extend(record["latencies_ms"])
                subject.throughput.setdefault(threads, []).append(len(record["latencies_ms"]) / record["seconds"])
            done += 1
            progress(done * 100 // steps)


def _in_turn(subjects: list[Subject], turn: int) -> list[Subject]:
    """A B, B A, A B ...: whichever runs first in a pair (colder caches) is not always the same."""
    return subjects if turn % 2 == 0 else subjects[::-1]


def figures(subject: Subject) -> dict[tuple[str, int | None], float]:
    """KPI (and concurrency) -> this subject's figure."""
    out: dict[tuple[str, int | None], float] = {
        ("startup_ms", None): round(median(subject.startup_ms), 1),
        ("cpu_ms", None): round(median(subject.cpu_ms), 1),
        ("peak_rss_mb", None): round(max(subject.rss_kb) / 1024, 1),
    }
    for threads, latencies in subject.latencies.items():
        for pct in (50, 95, 99):
            out[(f"latency_p{pct}_ms", threads)] = round(percentile(latencies, pct), 3)
        out[("throughput_rps", threads)] = round(median(subject.throughput[threads]), 1)
    return out


def kpis(this: Subject, baseline: Subject | None, budget: Budget) -> list[Measured]:
    ours, theirs = figures(this), figures(baseline) if baseline else {}
    measured = []
    for (kpi, threads), value in ours.items():
        budgeted = threads is None or threads == budget.peak_threads
        measured.append(
            Measured(
                kpi=kpi,
                value=value,
                concurrency=threads,
                baseline=theirs.get((kpi, threads)),
                budget=budget.limits.get(kpi) if budgeted else None,
            )
        )
    return measured


def _metric(item: Measured, budget: Budget, baseline: Subject | None) -> dict:
    return {
        "kpi": item.kpi,
        "concurrency": item.concurrency,
        "value": item.value,
        "unit": KPIS[item.kpi].unit,
        "budget": item.budget,
        "within_budget": item.within_budget,
        "baseline_version_id": baseline.version_id if baseline and item.baseline is not None else None,
        "baseline_value": item.baseline,
        "change_percent": item.change_percent,
        "regressed": item.regressed(budget.regression_percent),
    }


def _forged_finding(subject: Subject) -> FindingData:
    return FindingData(
        rule_id="performance.forged-measurement",
        title=f"Forged measurement: {subject.forged[0]}"[:300],
        severity="critical",
        kind="performance",
        message="The figures the plugin's process reported contradict what was measured outside it "
        f"(the kernel's accounting of the sandbox's processes, the runner's clock): {'; '.join(subject.forged[:10])}. "
        "The KPIs shown are the outside measurements; code that forges its own measurement cannot be trusted.",
        cwe="CWE-345",
        tool=TOOL,
        snippet="forged-measurement",
        data={"contradictions": subject.forged[:50]},
    )


def _did_not_start(subject: Subject, budget: Budget, reason: str) -> CheckOutcome:
    run = subject.failure
    assert run is not None
    finding = FindingData(
        rule_id="performance.start-failed",
        title=f"The plugin did not start in the harness ({reason})",
        severity="high",
        kind="performance",
        message=run.output.decode("utf-8", "replace")[-2000:],
        tool=TOOL,
        snippet="start-failed",
        data={"limit": run.limit, "exit_code": run.exit_code},
    )
    return CheckOutcome(passed=False, findings=[finding], summary={"budget": budget.source, "started": False})
