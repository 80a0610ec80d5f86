"""Stage reviews: one per stage per version per review round."""

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django_fsm import FSMField, FSMModelMixin, transition
from simple_history.models import HistoricalRecords

from governance.models import StageKind as StageKindChoices


class ReviewStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    IN_PROGRESS = "in_progress", "In progress"
    PASSED = "passed", "Passed"
    FAILED = "failed", "Failed"
    CHANGES_REQUESTED = "changes_requested", "Changes requested"
    WAIVED = "waived", "Waived"
    CANCELLED = "cancelled", "Cancelled"


R = ReviewStatus
OPEN = [R.PENDING, R.IN_PROGRESS]
# A blocking stage is done, for the pipeline, when it passed or was waived.
CLEARED = {R.PASSED, R.WAIVED}


class StageReview(FSMModelMixin, models.Model):
    """The review of one stage of one version in one round.

    ``cancelled`` closes a review that was still open when its round ended some other way
    (changes requested or a blocking failure elsewhere, withdrawal, rejection): the next
    round gets fresh reviews and the old ones stay as the record of what happened.
    """

    version = models.ForeignKey("submissions.PluginVersion", on_delete=models.CASCADE, related_name="stage_reviews")
    stage = models.ForeignKey("governance.Stage", on_delete=models.PROTECT, related_name="reviews")
    round = models.PositiveSmallIntegerField()
    blocking = models.BooleanField(help_text="The stage's setting when the round opened; later edits do not change it.")
    status = FSMField(default=R.PENDING, choices=R.choices, protected=True, db_index=True)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="assigned_reviews"
    )
    started_at = models.DateTimeField(null=True, blank=True)
    due_at = models.DateTimeField(null=True, blank=True, db_index=True)
    window_hours = models.FloatField(
        null=True, blank=True, help_text="Working hours this review was given: the SLA less what earlier rounds used."
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    decision_reason = models.TextField(blank=True)
    unassigned_reason = models.CharField(
        max_length=200, blank=True, help_text="Why nobody could be assigned when the review started."
    )
    history = HistoricalRecords()

    class Meta:
        ordering = ("due_at", "pk")
        constraints = [
            models.UniqueConstraint(fields=["version", "stage", "round"], name="one_review_per_stage_per_round")
        ]
        indexes = [models.Index(fields=["assignee", "status"])]
        permissions = [
            ("review_stagereview", "Can review the stage (object permission of the stage's group)"),
            ("waive_stagereview", "Can waive any stage review"),
        ]

    def __str__(self) -> str:
        return f"{self.stage.name} of {self.version}"  # stage names say what they are: "Security review"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN

    @property
    def is_overdue(self) -> bool:
        return self.is_open and self.due_at is not None and self.due_at < timezone.now()

    @transition(field=status, source=R.PENDING, target=R.IN_PROGRESS)
    def start(self) -> None:
        pass

    @transition(field=status, source=R.IN_PROGRESS, target=R.PASSED)
    def pass_review(self) -> None:
        pass

    @transition(field=status, source=R.IN_PROGRESS, target=R.FAILED)
    def fail(self) -> None:
        pass

    @transition(field=status, source=R.IN_PROGRESS, target=R.CHANGES_REQUESTED)
    def request_changes(self) -> None:
        pass

    @transition(field=status, source=OPEN, target=R.WAIVED)
    def waive(self) -> None:
        pass

    @transition(field=status, source=OPEN, target=R.CANCELLED)
    def cancel(self) -> None:
        pass


# -- automated checks and their findings ------------------------------------------------


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


class CheckRun(FSMModelMixin, models.Model):
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


class Advisory(models.Model):
    """One OSV advisory; ``raw`` is the document as imported, ``modified`` decides whether a
    re-import replaces it."""

    osv_id = models.CharField(max_length=100, unique=True)
    aliases = models.JSONField(default=list, blank=True)
    summary = models.TextField(blank=True)
    severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.MEDIUM)
    modified = models.DateTimeField()
    published = models.DateTimeField(null=True, blank=True)
    withdrawn = models.DateTimeField(null=True, blank=True)
    raw = models.JSONField()
    imported_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("osv_id",)
        verbose_name_plural = "advisories"

    def __str__(self) -> str:
        return self.osv_id


class AdvisoryPackage(models.Model):
    """Index of the packages an advisory affects, so matching reads only what it needs."""

    advisory = models.ForeignKey(Advisory, on_delete=models.CASCADE, related_name="packages")
    ecosystem = models.CharField(max_length=50)
    name = models.CharField(max_length=200, help_text="PEP 503-normalised for PyPI.")

    class Meta:
        indexes = [models.Index(fields=["ecosystem", "name"])]

    def __str__(self) -> str:
        return f"{self.ecosystem}/{self.name}"


# -- SLAs ---------------------------------------------------------------------------------


class SlaSignal(models.Model):
    """A reminder or escalation that was sent, so each is sent exactly once."""

    review = models.ForeignKey(StageReview, on_delete=models.CASCADE, related_name="sla_signals")
    kind = models.CharField(max_length=20)  # reminder, escalation
    key = models.CharField(max_length=20)  # the fraction, or the escalation's number
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["review", "kind", "key"], name="one_signal_each")]

    def __str__(self) -> str:
        return f"{self.kind} {self.key} for {self.review_id}"


class SlaBreach(models.Model):
    """A review that went past its due time: when it was due, when it ended, by how much."""

    review = models.OneToOneField(StageReview, on_delete=models.CASCADE, related_name="sla_breach")
    stage = models.ForeignKey("governance.Stage", on_delete=models.PROTECT, related_name="sla_breaches")
    planned_due = models.DateTimeField()
    detected_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True, help_text="When the review was decided or closed.")
    hours_over = models.FloatField(null=True, blank=True, help_text="Working hours past due, once resolved.")

    class Meta:
        ordering = ("-planned_due",)
        verbose_name_plural = "SLA breaches"

    def __str__(self) -> str:
        return f"{self.stage} breach on review {self.review_id}"


# -- qualifications ------------------------------------------------------------------------


class TrainingRecord(models.Model):
    """A course a reviewer completed; qualifications may rest on it."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="training_records")
    course = models.CharField(max_length=200)
    completed_on = models.DateField()
    expires_on = models.DateField(null=True, blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ("-completed_on",)

    def __str__(self) -> str:
        return f"{self.user}: {self.course} ({self.completed_on})"


class ReviewerQualification(models.Model):
    """What a reviewer may review: only a current qualification counts for assignment and sign-off."""

    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="qualifications")
    stage_kind = models.CharField(max_length=20, choices=[(k.value, k.label) for k in StageKindChoices])
    granted_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    earned_on = models.DateField()
    expires_on = models.DateField(null=True, blank=True)
    training = models.ForeignKey(TrainingRecord, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    history = HistoricalRecords()

    class Meta:
        ordering = ("reviewer", "stage_kind")
        indexes = [models.Index(fields=["stage_kind", "expires_on"])]

    def __str__(self) -> str:
        return f"{self.reviewer} qualified for {self.stage_kind}"


# -- annotations and feedback -----------------------------------------------------------


class AnnotationKind(models.TextChoices):
    COMMENT = "comment", "Comment"
    MITIGATION = "mitigation", "Proposed mitigation"


class Annotation(models.Model):
    """A comment or proposed mitigation on a version, one of its stage reviews, findings or
    control assessments.

    A thread is a root annotation and its replies. Threads are internal to reviewers unless
    addressed to the author, and authors see only those.
    """

    version = models.ForeignKey("submissions.PluginVersion", on_delete=models.CASCADE, related_name="annotations")
    stage_review = models.ForeignKey(
        StageReview, on_delete=models.CASCADE, null=True, blank=True, related_name="annotations"
    )
    finding = models.ForeignKey(Finding, on_delete=models.SET_NULL, null=True, blank=True, related_name="annotations")
    assessment = models.ForeignKey(
        "compliance.ControlAssessment", on_delete=models.CASCADE, null=True, blank=True, related_name="annotations"
    )
    parent = models.ForeignKey("self", on_delete=models.CASCADE, null=True, blank=True, related_name="replies")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="annotations")
    kind = models.CharField(max_length=20, choices=AnnotationKind.choices, default=AnnotationKind.COMMENT)
    body = models.TextField()
    to_author = models.BooleanField(default=False, help_text="Addressed to the plugin's authors (they see it).")
    mentions = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ("created_at", "pk")

    def __str__(self) -> str:
        return f"{self.get_kind_display()} by {self.author} on {self.version}"


class Feedback(models.Model):
    """After a decision, the author and the reviewers rate the process (1 to 5) for the metrics."""

    version = models.ForeignKey("submissions.PluginVersion", on_delete=models.CASCADE, related_name="feedback")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="feedback")
    role = models.CharField(max_length=20)  # author, reviewer
    requested_at = models.DateTimeField(auto_now_add=True)
    rating = models.PositiveSmallIntegerField(null=True, blank=True)
    comment = models.TextField(blank=True)
    answered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-requested_at",)
        constraints = [models.UniqueConstraint(fields=["version", "user"], name="one_feedback_per_person_per_version")]

    def __str__(self) -> str:
        return f"Feedback of {self.user} on {self.version}"


# -- performance: budgets and measured KPIs ------------------------------------------------


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


class ThreatModelStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    SUBMITTED = "submitted", "Submitted for review"
    CHANGES_REQUESTED = "changes_requested", "Changes requested"
    ACCEPTED = "accepted", "Accepted"


class ThreatModel(FSMModelMixin, models.Model):
    """The author's threat model of one version, reviewed by the security reviewer."""

    version = models.OneToOneField("submissions.PluginVersion", on_delete=models.CASCADE, related_name="threat_model")
    status = FSMField(default=ThreatModelStatus.DRAFT, choices=ThreatModelStatus.choices, protected=True)
    summary = models.TextField(blank=True, help_text="What the plugin does, in the author's words.")
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    review_note = models.TextField(blank=True)
    history = HistoricalRecords()

    def __str__(self) -> str:
        return f"Threat model of {self.version}"

    @transition(
        field=status,
        source=[ThreatModelStatus.DRAFT, ThreatModelStatus.CHANGES_REQUESTED],
        target=ThreatModelStatus.SUBMITTED,
    )
    def submit(self) -> None:
        pass

    @transition(field=status, source=ThreatModelStatus.SUBMITTED, target=ThreatModelStatus.ACCEPTED)
    def accept(self) -> None:
        pass

    @transition(field=status, source=ThreatModelStatus.SUBMITTED, target=ThreatModelStatus.CHANGES_REQUESTED)
    def request_changes(self) -> None:
        pass


class ElementKind(models.TextChoices):
    ASSET = "asset", "Asset"
    ENTRY_POINT = "entry_point", "Entry point"
    TRUST_BOUNDARY = "trust_boundary", "Trust boundary"


class Source(models.TextChoices):
    AUTHOR = "author", "Author"
    MANIFEST = "manifest", "plugin.toml"
    BEHAVIOUR = "behaviour", "Observed in the sandbox"


class ThreatModelElement(models.Model):
    threat_model = models.ForeignKey(ThreatModel, on_delete=models.CASCADE, related_name="elements")
    kind = models.CharField(max_length=20, choices=ElementKind.choices)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.AUTHOR)
    history = HistoricalRecords()

    class Meta:
        ordering = ("kind", "pk")
        constraints = [models.UniqueConstraint(fields=["threat_model", "kind", "name"], name="one_element_per_name")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.name}"


class Stride(models.TextChoices):
    SPOOFING = "spoofing", "Spoofing"
    TAMPERING = "tampering", "Tampering"
    REPUDIATION = "repudiation", "Repudiation"
    INFORMATION_DISCLOSURE = "information_disclosure", "Information disclosure"
    DENIAL_OF_SERVICE = "denial_of_service", "Denial of service"
    ELEVATION_OF_PRIVILEGE = "elevation_of_privilege", "Elevation of privilege"


class Rating(models.TextChoices):
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"


class ThreatStatus(models.TextChoices):
    OPEN = "open", "Open"
    MITIGATED = "mitigated", "Mitigated"
    ACCEPTED = "accepted", "Accepted"
    TRANSFERRED = "transferred", "Transferred"


class Threat(models.Model):
    threat_model = models.ForeignKey(ThreatModel, on_delete=models.CASCADE, related_name="threats")
    title = models.CharField(max_length=200)
    stride = models.CharField("STRIDE category", max_length=30, choices=Stride.choices)
    element = models.ForeignKey(
        ThreatModelElement, on_delete=models.SET_NULL, null=True, blank=True, related_name="threats"
    )
    likelihood = models.CharField(max_length=10, choices=Rating.choices, default=Rating.MEDIUM)
    impact = models.CharField(max_length=10, choices=Rating.choices, default=Rating.MEDIUM)
    mitigation = models.TextField(blank=True)
    status = models.CharField(max_length=12, choices=ThreatStatus.choices, default=ThreatStatus.OPEN)
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.AUTHOR)
    history = HistoricalRecords()

    class Meta:
        ordering = ("pk",)

    def __str__(self) -> str:
        return self.title
