"""SLA signals and breaches, training records and reviewer qualifications."""

from django.conf import settings
from django.db import models
from simple_history.models import HistoricalRecords

from governance.models import StageKind as StageKindChoices

from .stages import StageReview


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
