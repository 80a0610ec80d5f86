"""The performance harness: KPIs stored as metrics, budgets, and regressions against the last
approved version measured side by side. Plugins sleep rather than spin, so that the figures
do not depend on how busy the machine is."""

import json

import pytest

from governance.models import HostPlatform
from reviews.checks import CheckContext
from reviews.checks.engine import artifact_tree
from reviews.checks.performance import performance_harness
from reviews.models import PerformanceBudget, PerformanceMetric, RunStatus
from reviews.performance import Budget, Measured, budget_for, judge, percentile
from reviews.sandbox.runner import isolation_available
from reviews.services import stage_pass
from submissions import services as sub
from submissions.samples import MANIFEST_TEMPLATE, plugin_archive
from tests.conftest import current_review, open_review

pytestmark = pytest.mark.skipif(not isolation_available(), reason="bubblewrap (bwrap) is not installed")

BENCHMARK = '\n[performance]\nbenchmark = "acme_exporter.plugin:bench"\n'


def source(*, import_seconds: float = 0.0, call_seconds: float = 0.0) -> bytes:
    return (
        "import time\n"
        f"time.sleep({import_seconds})\n\n"
        "class Plugin:\n    def __init__(self, host=None):\n        self.host = host\n\n"
        f"def bench():\n    time.sleep({call_seconds})\n"
    ).encode()


def archive(number: str, *, benchmark: bool = False, **timing):
    manifest = MANIFEST_TEMPLATE.format(
        name="acme-exporter", version=number, module="acme_exporter", category="data-connector"
    )
    return {
        "manifest": manifest + (BENCHMARK if benchmark else ""),
        "files": {"acme_exporter/plugin.py": source(**timing)},
    }


@pytest.fixture(autouse=True)
def quick_plan(settings):
    settings.WARDEN_PERFORMANCE = {"startup_runs": 5, "warmup_calls": 2, "rounds": 2, "calls_per_round": 20}


@pytest.fixture
def host(db):
    return HostPlatform.objects.create(
        name="Host", api_version="2.4", is_default=True, resource_limits={"memory_mb": 256, "startup_ms": 2000}
    )


def measure(version):
    version.refresh_from_db()
    return performance_harness(
        CheckContext(
            version_id=version.pk, plugin_id=version.plugin_id, manifest=version.manifest, root=artifact_tree(version)
        )
    )


def new_version(plugin, author, number, **options):
    return sub.version_create(
        plugin=plugin, artifact=plugin_archive(plugin.name, number, **archive(number, **options)), actor=author
    )


def metric(outcome, kpi, concurrency=None):
    (found,) = [m for m in outcome.metrics if m["kpi"] == kpi and m["concurrency"] == concurrency]
    return found


def test_a_plugin_made_50_percent_slower_is_flagged_against_the_last_approved_version(
    host, make_approved, plugin, author
):
    # 0.4 s against 0.6 s of import: the ~50 ms of process start-up and the machine's noise
    # stay small beside the 50 % the plugin got slower
    previous = make_approved("1.0.0", **archive("1.0.0", import_seconds=0.4))
    slower = new_version(plugin, author, "1.1.0", import_seconds=0.6)

    outcome = measure(slower)

    startup = metric(outcome, "startup_ms")
    assert startup["baseline_version_id"] == previous.pk
    assert startup["value"] > startup["baseline_value"] + 120
    assert startup["change_percent"] > 20 and startup["regressed"]
    (regression,) = [f for f in outcome.findings if f.rule_id == "performance.regression"]
    assert "Cold startup" in regression.title and "1.0.0 (last approved)" in regression.title
    assert regression.data["remediation"]
    assert not outcome.passed


def test_a_version_within_noise_is_not_flagged(host, make_approved, plugin, author):
    make_approved("1.0.0", **archive("1.0.0", import_seconds=0.2))
    same = new_version(plugin, author, "1.0.1", import_seconds=0.2)

    outcome = measure(same)

    startup = metric(outcome, "startup_ms")
    assert abs(startup["change_percent"]) < 20
    assert not any(m["regressed"] for m in outcome.metrics)
    assert list(outcome.findings) == []
    assert outcome.passed


def test_load_kpis_at_typical_and_peak_concurrency_and_the_budget_verdicts(host, plugin, author):
    PerformanceBudget.objects.create(
        host_platform=host,
        category="data-connector",
        latency_p95_ms=1.0,
        peak_rss_mb=512,
        typical_threads=2,
        peak_threads=4,
    )
    version = new_version(plugin, author, "2.0.0", benchmark=True, call_seconds=0.005)

    outcome = measure(version)

    kpis = {(m["kpi"], m["concurrency"]) for m in outcome.metrics}
    for threads in (2, 4):
        assert {(f"latency_p{p}_ms", threads) for p in (50, 95, 99)} <= kpis
        assert ("throughput_rps", threads) in kpis
    p95 = metric(outcome, "latency_p95_ms", 4)
    assert p95["value"] >= 5 and p95["budget"] == 1.0 and p95["within_budget"] is False
    assert metric(outcome, "latency_p95_ms", 2)["budget"] is None  # budgets hold at peak concurrency
    assert metric(outcome, "peak_rss_mb")["within_budget"] is True
    assert 2 * 0.8 / 0.005 * 0.5 < metric(outcome, "throughput_rps", 2)["value"] < 2 / 0.005 * 1.1
    (breach,) = [f for f in outcome.findings if f.rule_id == "performance.budget"]
    assert "Latency p95 at 4 threads" in breach.title and "at most 1" in breach.title
    assert breach.severity == "high"  # more than twice the budget


def test_a_plugin_that_does_not_start_gets_a_finding_and_no_metrics(host, plugin, author):
    broken = sub.version_create(
        plugin=plugin,
        artifact=plugin_archive(plugin.name, "3.0.0", files={"acme_exporter/plugin.py": b"raise SystemExit(3)\n"}),
        actor=author,
    )

    outcome = measure(broken)

    (finding,) = outcome.findings
    assert finding.rule_id == "performance.start-failed" and "status 3" in finding.title
    assert outcome.metrics == []


def test_the_harness_runs_on_the_performance_stage_and_stores_its_metrics(
    host, make_approved, plugin, author, pipeline, platform_admin, django_capture_on_commit_callbacks
):
    previous = make_approved("1.0.0")
    # a generous regression margin: this test is about the plumbing, not the verdict
    PerformanceBudget.objects.create(
        host_platform=host, category="", peak_rss_mb=256, startup_ms=2000, regression_percent=400
    )
    performance_stage = pipeline["performance"]
    performance_stage.checks = ["performance.harness"]
    performance_stage.save()
    version = new_version(plugin, author, "1.1.0")

    with django_capture_on_commit_callbacks(execute=True):
        sub.version_submit(version=version, actor=author)
    with django_capture_on_commit_callbacks(execute=True):
        stage_pass(review=open_review(version, "eligibility"), actor=platform_admin)

    run = current_review(version, "performance").check_runs.get()
    assert run.status == RunStatus.SUCCEEDED, run.error
    stored = {m.kpi: m for m in PerformanceMetric.objects.filter(check_run=run)}
    assert set(stored) == {"startup_ms", "cpu_ms", "peak_rss_mb"}
    assert stored["startup_ms"].baseline_version == previous
    assert stored["peak_rss_mb"].budget == 256 and stored["peak_rss_mb"].within_budget is True
    assert stored["startup_ms"].budget == 2000
    assert run.summary["baseline"] == "1.0.0 (last approved)"
    samples = json.loads(run.report.read())["samples"]
    assert [s["version"] for s in samples] == [version.pk, previous.pk]
    assert len(samples[0]["startup_ms"]) == 5 and len(samples[1]["startup_ms"]) == 5  # side by side


# Budgets and verdicts without running anything.


def test_budgets_come_from_the_category_then_the_default_row_then_the_host_limits(host):
    assert budget_for(category="ui").limits == {"peak_rss_mb": 256.0, "startup_ms": 2000.0}
    PerformanceBudget.objects.create(host_platform=host, category="", startup_ms=300, regression_percent=10)
    assert budget_for(category="ui").limits == {"startup_ms": 300}
    PerformanceBudget.objects.create(host_platform=host, category="ui", startup_ms=100)
    assert budget_for(category="ui").limits == {"startup_ms": 100}
    assert budget_for(category="other").regression_percent == 10


def test_noise_floor_and_direction():
    budget = Budget(limits={"throughput_rps": 100}, regression_percent=20)
    slower_but_tiny = Measured("startup_ms", 5.0, baseline=3.0)  # +67%, but 2 ms is noise
    fewer_calls = Measured("throughput_rps", 70.0, concurrency=16, baseline=100.0, budget=100)

    assert not slower_but_tiny.regressed(20)
    assert fewer_calls.change_percent == 30.0 and fewer_calls.regressed(20)
    assert fewer_calls.within_budget is False
    assert {f.rule_id for f in judge([slower_but_tiny, fewer_calls], budget, baseline_label="1.0")} == {
        "performance.budget",
        "performance.regression",
    }


def test_percentile_is_nearest_rank():
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 50), percentile(values, 95), percentile(values, 99)) == (50.0, 95.0, 99.0)
    assert percentile([7.0], 99) == 7.0


def test_figures_the_plugin_forges_are_a_critical_finding_and_not_measured(host, plugin, author):
    forged = (
        b"import json, os, sys\n"
        b"fd = json.loads(sys.argv[1])['report_fd']\n"
        b'os.write(fd, b\'{"type": "round", "threads": 16, "round": 0, "latencies_ms": [0.001], "seconds": 1}\\n\')\n'
        b"class Plugin:\n    pass\n\ndef bench():\n    pass\n"
    )
    manifest = archive("4.0.0", benchmark=True)["manifest"]
    version = sub.version_create(
        plugin=plugin,
        artifact=plugin_archive(plugin.name, "4.0.0", manifest=manifest, files={"acme_exporter/plugin.py": forged}),
        actor=author,
    )

    outcome = measure(version)

    (finding,) = outcome.findings
    assert finding.rule_id == "performance.forged-measurement" and finding.severity == "critical"
    assert "round figures written from inside the plugin's process" in finding.title
    assert not outcome.passed
    # what is shown is what the runner measured: every call it timed, none of the forged 0.001 ms
    assert metric(outcome, "latency_p50_ms", 16)["value"] > 0.001
