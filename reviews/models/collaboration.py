"""Annotations (threads with the authors) and feedback."""

from django.conf import settings
from django.db import models

from .checks import Finding
from .stages import StageReview


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
