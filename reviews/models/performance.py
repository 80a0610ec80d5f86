"""Performance budgets and the metrics measured against them."""

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from simple_history.models import HistoricalRecords

from .checks import CheckRun

THREADS = [MinValueValidator(1), MaxValueValidator(256)]


class PerformanceBudget(models.Model):
    """What a plugin of one category may cost on one host platform. A blank category applies
    to every category without its own row; with no row at all, the host platform's
    ``resource_limits`` are the budget (reviews/performance.py)."""

    host_platform = models.ForeignKey(
        "governance.HostPlatform", on_delete=models.CASCADE, related_name="performance_budgets"
    )
    category = models.CharField(max_length=64, blank=True, help_text="Plugin category; blank for the default.")
    startup_ms = models.FloatField(null=True, blank=True, help_text="Cold start: import and construction.")
    peak_rss_mb = models.FloatField("peak RSS (MB)", null=True, blank=True)
    cpu_ms = models.FloatField("CPU (ms)", null=True, blank=True, help_text="CPU time to start.")
    latency_p95_ms = models.FloatField("p95 latency (ms)", null=True, blank=True, help_text="At peak concurrency.")
    throughput_rps = models.FloatField(
        "minimum throughput (calls/s)", null=True, blank=True, help_text="At peak concurrency."
    )
    regression_percent = models.FloatField(
        default=20.0, help_text="A KPI worse than the last approved version's by more than this is a regression."
    )
    typical_threads = models.PositiveSmallIntegerField(
        default=4, validators=THREADS, help_text="Concurrency the host usually runs (1 to 256)."
    )
    peak_threads = models.PositiveSmallIntegerField(default=16, validators=THREADS, help_text="Concurrency at peak.")
    history = HistoricalRecords()

    class Meta:
        ordering = ("host_platform", "category")
        constraints = [
            models.UniqueConstraint(fields=["host_platform", "category"], name="one_budget_per_host_category")
        ]

    def __str__(self) -> str:
        return f"{self.category or 'any category'} on {self.host_platform.name}"


class PerformanceMetric(models.Model):
    """One KPI measured by a performance run, with its budget and the last approved version's
    figure measured beside it in the same run."""

    check_run = models.ForeignKey(CheckRun, on_delete=models.CASCADE, related_name="metrics")
    version = models.ForeignKey(
        "submissions.PluginVersion", on_delete=models.CASCADE, related_name="performance_metrics"
    )
    kpi = models.CharField(max_length=40)
    concurrency = models.PositiveSmallIntegerField(null=True, blank=True, help_text="Threads, for load KPIs.")
    value = models.FloatField()
    unit = models.CharField(max_length=16)
    budget = models.FloatField(null=True, blank=True)
    within_budget = models.BooleanField(null=True, blank=True)
    baseline_version = models.ForeignKey(
        "submissions.PluginVersion", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    baseline_value = models.FloatField(null=True, blank=True)
    change_percent = models.FloatField(
        null=True, blank=True, help_text="How much worse than the baseline (negative: better)."
    )
    regressed = models.BooleanField(default=False)

    class Meta:
        ordering = ("check_run", "pk")
        indexes = [models.Index(fields=["version", "kpi"])]

    def __str__(self) -> str:
        return f"{self.kpi} = {self.value:g} {self.unit}"


# -- threat model --------------------------------------------------------------------------
