"""Stage reviews: one per stage per version per review round."""

from django.conf import settings
from django.db import models
from django.utils import timezone
from django_fsm import FSMField, transition
from simple_history.models import HistoricalRecords

from governance.fsm import StateMachineMixin


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


class StageReview(StateMachineMixin, models.Model):
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
    escalation_flags = models.JSONField(
        default=list,
        blank=True,
        help_text="Security reviews: what the version adds against the last approved version (new "
        "permissions, capabilities, data categories), each {kind, what, reason}; set by the system "
        "when the stage's checks finish (reviews/escalation.py).",
    )
    escalation_acknowledged_at = models.DateTimeField(
        null=True, blank=True, help_text="When a reviewer passed the review with a reason, accepting the flags."
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
