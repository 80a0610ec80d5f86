"""Frameworks of controls, checklists that pick them, and the assessments of a version."""

from django.conf import settings
from django.db import models
from django_fsm import FSMField, transition
from simple_history.models import HistoricalRecords

from governance.fsm import StateMachineMixin


class Criticality(models.TextChoices):
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"


class Framework(models.Model):
    """A versioned set of controls (a data-handling policy, a privacy regulation, ...).
    Importing changed content makes a new version; old versions stay for old assessments."""

    key = models.SlugField(max_length=64)
    version = models.PositiveIntegerField(default=1)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    imported_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ("key", "-version")
        constraints = [models.UniqueConstraint(fields=["key", "version"], name="framework_version_unique")]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"


class Control(models.Model):
    framework = models.ForeignKey(Framework, on_delete=models.CASCADE, related_name="controls")
    key = models.SlugField(max_length=64)
    text = models.TextField()
    criticality = models.CharField(max_length=10, choices=Criticality.choices, default=Criticality.MEDIUM)
    guidance = models.TextField(blank=True)
    typical_evidence = models.TextField(blank=True)
    applies_to_data = models.JSONField(
        default=list, blank=True, help_text='Only for plugins processing these data categories, e.g. ["pii"].'
    )
    expression = models.TextField(
        blank=True, help_text="CEL over the version's facts; true = met, false = not met. Empty: needs evidence."
    )
    history = HistoricalRecords()

    class Meta:
        ordering = ("framework", "key")
        constraints = [models.UniqueConstraint(fields=["framework", "key"], name="control_key_unique")]

    def __str__(self) -> str:
        return f"{self.framework.key}/{self.key}"


class Checklist(models.Model):
    """Which frameworks apply to which plugins: by plugin category (empty: every category)."""

    name = models.CharField(max_length=100, unique=True)
    categories = models.JSONField(default=list, blank=True, help_text="Plugin categories; [] means all.")
    frameworks = models.ManyToManyField(Framework, related_name="checklists")
    re_review_days = models.PositiveIntegerField(default=365)
    history = HistoricalRecords()

    class Meta:
        ordering = ("name",)

    def __str__(self) -> str:
        return self.name


class Result(models.TextChoices):
    PENDING = "pending", "Not assessed yet"
    MET = "met", "Met"
    PARTIALLY_MET = "partially_met", "Partially met"
    NOT_MET = "not_met", "Not met"
    NOT_APPLICABLE = "not_applicable", "Not applicable"


class AssessmentStatus(models.TextChoices):
    TODO = "todo", "To do"
    IN_REVIEW = "in_review", "In review"
    DONE = "done", "Done"


A = AssessmentStatus


class ControlAssessment(StateMachineMixin, models.Model):
    """One control, assessed for one compliance review: automatically when the control has an
    expression (with its inputs kept), else by the compliance officer on evidence."""

    stage_review = models.ForeignKey("reviews.StageReview", on_delete=models.CASCADE, related_name="assessments")
    control = models.ForeignKey(Control, on_delete=models.PROTECT, related_name="assessments")
    result = models.CharField(max_length=20, choices=Result.choices, default=Result.PENDING)
    status = FSMField(max_length=20, choices=AssessmentStatus.choices, default=AssessmentStatus.TODO, protected=True)
    automatic = models.BooleanField(default=False)
    inputs = models.JSONField(default=dict, blank=True, help_text="The facts the expression read.")
    reason = models.TextField(blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ("control__framework__key", "control__key")
        constraints = [models.UniqueConstraint(fields=["stage_review", "control"], name="one_assessment_per_control")]

    def __str__(self) -> str:
        return f"{self.control} for review {self.stage_review_id}: {self.get_result_display()}"

    @transition(field=status, source=A.TODO, target=A.IN_REVIEW)
    def await_review(self) -> None:
        """Evidence for the control arrived; the officer assesses it."""

    @transition(field=status, source=A.TODO, target=A.DONE)
    def assess_automatically(self) -> None:
        """The control's expression decided it when the compliance stage started."""

    @transition(field=status, source=[A.TODO, A.IN_REVIEW, A.DONE], target=A.DONE)
    def decide(self) -> None:
        """The officer's result (again, if they change their mind while the review is open)."""


class EvidenceKind(models.TextChoices):
    DATA_FLOW = "data_flow", "Data-flow diagram"
    ARCHITECTURE = "architecture", "Architecture diagram"
    POLICY = "policy", "Policy statement"
    QUESTIONNAIRE = "questionnaire", "Questionnaire"
    CERTIFICATE = "certificate", "Certificate"
    OTHER = "other", "Other"


class EvidenceStatus(models.TextChoices):
    IN_REVIEW = "in_review", "In review"
    ACCEPTED = "accepted", "Accepted"
    REJECTED = "rejected", "Rejected"


def evidence_path(instance: "Evidence", filename: str) -> str:
    import uuid

    return f"evidence/{uuid.uuid4().hex}/{filename.rsplit('/', 1)[-1][:100]}"


E = EvidenceStatus


class Evidence(StateMachineMixin, models.Model):
    """A document an author gives for one or more controls. Never executed, never rendered:
    it is only ever downloaded as an attachment. A new upload for the same evidence is a new
    revision; earlier revisions stay."""

    version = models.ForeignKey("submissions.PluginVersion", on_delete=models.CASCADE, related_name="evidence")
    controls = models.ManyToManyField(Control, related_name="evidence")
    kind = models.CharField(max_length=20, choices=EvidenceKind.choices)
    description = models.TextField(blank=True)
    file = models.FileField(upload_to=evidence_path, max_length=255)
    file_name = models.CharField(max_length=200)
    sha256 = models.CharField(max_length=64)
    size = models.PositiveBigIntegerField()
    revision = models.PositiveSmallIntegerField(default=1)
    previous = models.OneToOneField("self", on_delete=models.PROTECT, null=True, blank=True, related_name="next")
    expires_on = models.DateField(null=True, blank=True)
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    uploaded_at = models.DateTimeField(auto_now_add=True)
    status = FSMField(max_length=20, choices=EvidenceStatus.choices, default=EvidenceStatus.IN_REVIEW, protected=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_reason = models.TextField(blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ("-uploaded_at", "-pk")
        verbose_name_plural = "evidence"

    def __str__(self) -> str:
        return f"{self.get_kind_display()} r{self.revision} for {self.version}"

    @transition(field=status, source=E.IN_REVIEW, target=E.ACCEPTED)
    def accept(self) -> None:
        pass

    @transition(field=status, source=E.IN_REVIEW, target=E.REJECTED)
    def reject(self) -> None:
        pass


class ResidualRisk(models.TextChoices):
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"


class ComplianceSignOff(models.Model):
    """The compliance officer's sign-off: the residual risk they accept and why."""

    stage_review = models.OneToOneField("reviews.StageReview", on_delete=models.CASCADE, related_name="sign_off")
    residual_risk = models.CharField(max_length=10, choices=ResidualRisk.choices)
    statement = models.TextField()
    signed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    signed_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords()

    def __str__(self) -> str:
        return f"{self.get_residual_risk_display()} residual risk, {self.signed_by}"


class ReReviewStatus(models.TextChoices):
    SCHEDULED = "scheduled", "Scheduled"
    OPEN = "open", "Open"
    DONE = "done", "Done"


R = ReReviewStatus


class ReReview(StateMachineMixin, models.Model):
    """Ongoing conformity: a deployed version is looked at again on its checklist's interval,
    or early when evidence it rests on expires."""

    version = models.ForeignKey("submissions.PluginVersion", on_delete=models.CASCADE, related_name="re_reviews")
    due_on = models.DateField(db_index=True)
    reason = models.CharField(max_length=200)
    status = FSMField(max_length=10, choices=ReReviewStatus.choices, default=ReReviewStatus.SCHEDULED, protected=True)
    opened_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    completed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    outcome = models.TextField(blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ("due_on", "pk")

    def __str__(self) -> str:
        return f"Re-review of {self.version} due {self.due_on}"

    @transition(field=status, source=R.SCHEDULED, target=R.OPEN)
    def open(self) -> None:
        pass

    @transition(field=status, source=R.OPEN, target=R.DONE)
    def complete(self) -> None:
        pass

    @transition(field=status, source=[R.SCHEDULED, R.OPEN], target=R.DONE)
    def close(self) -> None:
        """The version left deployment before the re-review was done."""
