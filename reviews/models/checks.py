"""Check runs, their findings and the triage of findings."""

from django.conf import settings
from django.db import models
from django_fsm import FSMField, transition

from governance.fsm import StateMachineMixin

from .stages import StageReview


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    ERRORED = "errored", "Errored"


RUN_ACTIVE = [RunStatus.QUEUED, RunStatus.RUNNING]
RUN_DONE = [RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.ERRORED]


class RunOrigin(models.TextChoices):
    INTERNAL = "internal", "Run by Warden"
    EXTERNAL = "external", "Posted by an external tool"


def report_path(instance: "CheckRun", filename: str) -> str:
    return f"reports/{instance.version_id}/{instance.pk or 'new'}-{filename[-80:]}"


class CheckRun(StateMachineMixin, models.Model):
    """One execution of a check (or one imported external report) against a version.

    *succeeded*: the check ran and passed; *failed*: it ran and its verdict is negative;
    *errored*: it could not run (the reviewer sees why and may re-run it).
    """

    version = models.ForeignKey("submissions.PluginVersion", on_delete=models.CASCADE, related_name="check_runs")
    stage_review = models.ForeignKey(
        StageReview, on_delete=models.SET_NULL, null=True, blank=True, related_name="check_runs"
    )
    check_key = models.CharField(max_length=64, db_index=True)
    revision = models.PositiveSmallIntegerField(
        default=1, help_text="The version's revision (its archive) the run judged: only the current one's runs count."
    )
    origin = models.CharField(max_length=10, choices=RunOrigin.choices, default=RunOrigin.INTERNAL)
    posted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="Who posted it, for external reports: one poster's report never replaces another's.",
    )
    replaces = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="The run it matches again (new advisories): its findings keep the triage given there.",
    )
    tool = models.CharField(max_length=100, blank=True)
    tool_version = models.CharField(max_length=64, blank=True)
    status = FSMField(default=RunStatus.QUEUED, choices=RunStatus.choices, protected=True, db_index=True)
    progress = models.PositiveSmallIntegerField(default=0, help_text="Percent.")
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    report = models.FileField(upload_to=report_path, blank=True, max_length=255)
    summary = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    report_digest = models.CharField(
        max_length=64,
        blank=True,
        help_text="External reports: SHA-256 of the posted bytes and of what Warden derived from them "
        "(advisory matches, budget judgements). The same poster posting the same report again "
        "gets this run back, unchanged.",
    )

    class Meta:
        ordering = ("-created_at", "-pk")
        indexes = [models.Index(fields=["version", "check_key"])]

    def __str__(self) -> str:
        return f"{self.check_key} on {self.version_id} #{self.pk}"

    @property
    def duration(self):
        return self.finished_at - self.started_at if self.started_at and self.finished_at else None

    @transition(field=status, source=[RunStatus.QUEUED, RunStatus.RUNNING], target=RunStatus.RUNNING)
    def start(self) -> None:
        self.attempts += 1

    @transition(field=status, source=RunStatus.RUNNING, target=RunStatus.SUCCEEDED)
    def succeed(self) -> None:
        pass

    @transition(field=status, source=RunStatus.RUNNING, target=RunStatus.FAILED)
    def fail(self) -> None:
        pass

    @transition(field=status, source=[RunStatus.QUEUED, RunStatus.RUNNING], target=RunStatus.ERRORED)
    def error_out(self) -> None:
        pass

    @transition(field=status, source=RUN_DONE, target=RunStatus.QUEUED)
    def requeue(self) -> None:
        self.progress = 0


class Severity(models.TextChoices):
    CRITICAL = "critical", "Critical"
    HIGH = "high", "High"
    MEDIUM = "medium", "Medium"
    LOW = "low", "Low"
    INFO = "info", "Info"


SEVERITY_RANK = {s.value: i for i, s in enumerate(Severity)}


class Triage(models.TextChoices):
    OPEN = "open", "Open"
    REMEDIATION_PLANNED = "remediation_planned", "Remediation planned"
    FIXED = "fixed", "Fixed"
    FALSE_POSITIVE = "false_positive", "False positive"
    ACCEPTED = "accepted", "Accepted"


class Finding(models.Model):
    """One problem a check or report found. Rewritten whole when its run is re-run; its
    triage changes only through ``finding_triage`` (each change is a FindingTriage row)."""

    check_run = models.ForeignKey(CheckRun, on_delete=models.CASCADE, related_name="findings")
    version = models.ForeignKey("submissions.PluginVersion", on_delete=models.CASCADE, related_name="findings")
    kind = models.CharField(max_length=20)
    severity = models.CharField(max_length=10, choices=Severity.choices, db_index=True)
    rule_id = models.CharField(max_length=200)
    title = models.CharField(max_length=300)
    message = models.TextField(blank=True)
    path = models.CharField(max_length=500, blank=True)
    line = models.PositiveIntegerField(null=True, blank=True)
    cwe = models.CharField(max_length=20, blank=True)
    tool = models.CharField(max_length=100, blank=True)
    fingerprint = models.CharField(max_length=64, db_index=True)
    location_key = models.CharField(
        max_length=64,
        blank=True,
        help_text="The place, whoever reports it: tool family, rule, path and line (findings_data.location_key). "
        "Findings of several sources at one place count once; never used for exemptions or triage.",
    )
    snippet = models.TextField(blank=True)
    data = models.JSONField(default=dict, blank=True)
    carried_over = models.BooleanField(default=False, help_text="Also found in the last approved version.")
    triage = models.CharField(max_length=20, choices=Triage.choices, default=Triage.OPEN, db_index=True)
    plan = models.TextField(blank=True, help_text="The remediation plan, when one is planned.")
    plan_due = models.DateField(null=True, blank=True)

    class Meta:
        ordering = ("pk",)
        indexes = [
            models.Index(fields=["version", "severity", "triage"]),
            models.Index(fields=["check_run", "location_key"]),
        ]

    def __str__(self) -> str:
        return f"[{self.severity}] {self.rule_id} {self.path}:{self.line or ''}"


class FindingTriage(models.Model):
    """Who changed a finding's triage, from what to what, and why. Append-only; it
    outlives the finding row (re-runs replace findings and re-attach their trail)."""

    finding = models.ForeignKey(
        Finding,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="triage_trail",
        help_text="Empty once the finding is gone (fixed, or no longer reported); the trail stays.",
    )
    version = models.ForeignKey("submissions.PluginVersion", on_delete=models.CASCADE, related_name="+")
    fingerprint = models.CharField(max_length=64, db_index=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+")
    from_state = models.CharField(max_length=20)
    to_state = models.CharField(max_length=20)
    reason = models.TextField()
    plan = models.TextField(blank=True)
    plan_due = models.DateField(null=True, blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("at", "pk")

    def __str__(self) -> str:
        return f"{self.from_state} → {self.to_state} by {self.actor or 'the report'}"


# -- vulnerability advisories (OSV) ------------------------------------------------------
