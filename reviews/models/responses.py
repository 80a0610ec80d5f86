"""Canned responses: the reasons reviewers give again and again, kept by platform admins
with the check or policy each one is about; and, per decided stage review, the responses it
used, as they read at that moment."""

from django.core.exceptions import ValidationError
from django.db import models
from simple_history.models import HistoricalRecords

from governance import hooks
from governance.checks import REGISTRY
from governance.models import StageKind

# A reviewer fails or requests changes on these; the decision stage is decided by the board.
RESPONSE_STAGE_KINDS = [kind for kind in StageKind if kind != StageKind.DECISION]


class CannedResponse(models.Model):
    """A reason a reviewer can start from when failing a stage or requesting changes.

    ``policy_key`` names a policy of the decisions layer (above this one, so not a foreign
    key): it is checked, when the response is saved, against the current policies that layer
    reports through the ``policy_keys`` hook. A policy retired later leaves the key as it was.
    """

    key = models.SlugField(max_length=80, unique=True)
    title = models.CharField(max_length=200)
    text = models.TextField(help_text="What the author is told; the reviewer starts from it and edits it.")
    check_key = models.CharField(
        max_length=80, blank=True, help_text="The automated check whose findings this response points at."
    )
    policy_key = models.SlugField(max_length=80, blank=True, help_text="The policy this response is about.")
    stage_kinds = models.JSONField(default=list, help_text="The kinds of stage whose reviewers may use it.")
    is_active = models.BooleanField(default=True, help_text="Inactive responses are kept but no longer offered.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ("title", "pk")

    def __str__(self) -> str:
        return self.title

    def applies_to(self, kind: str) -> bool:
        return kind in self.stage_kinds

    def clean(self) -> None:
        errors = {}
        if self.check_key and self.check_key not in REGISTRY:
            errors["check_key"] = f"Unknown check {self.check_key!r}. Known: {', '.join(sorted(REGISTRY))}."
        kinds = self.stage_kinds
        if not isinstance(kinds, list) or not kinds or not set(kinds) <= set(RESPONSE_STAGE_KINDS):
            errors["stage_kinds"] = f"One or more of: {', '.join(RESPONSE_STAGE_KINDS)}."
        known = known_policy_keys()
        if self.policy_key and known is not None and self.policy_key not in known:
            errors["policy_key"] = (
                f"No current policy {self.policy_key!r}. Known: {', '.join(sorted(known)) or 'none (sync_policies)'}."
            )
        if errors:
            raise ValidationError(errors)


def known_policy_keys() -> set[str] | None:
    """The keys of the current policies, as the layer that keeps them reports them; ``None``
    when no layer answers (then a policy key is not checked)."""
    answers = hooks.fire(hooks.POLICY_KEYS)
    return set().union(*answers) if answers else None


class UsedResponse(models.Model):
    """A canned response used in a stage review's decision, copied as it read then: editing
    the response later does not rewrite what the author was told. Written once, with the
    decision, by ``stage_fail`` or ``stage_request_changes``."""

    review = models.ForeignKey("reviews.StageReview", on_delete=models.CASCADE, related_name="responses_used")
    response = models.ForeignKey(CannedResponse, on_delete=models.PROTECT, related_name="uses")
    position = models.PositiveSmallIntegerField(help_text="The order the reviewer picked them in.")
    key = models.SlugField(max_length=80)
    title = models.CharField(max_length=200)
    text = models.TextField()
    check_key = models.CharField(max_length=80, blank=True)
    policy_key = models.SlugField(max_length=80, blank=True)

    class Meta:
        ordering = ("review", "position")
        constraints = [
            models.UniqueConstraint(fields=["review", "response"], name="response_used_once_per_review"),
        ]

    def __str__(self) -> str:
        return f"{self.key} in stage review #{self.review_id}"
