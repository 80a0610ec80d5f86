"""Retro-hunt: what a policy or advisory change finds in versions already approved.

When the policies or the advisory store change, the versions hosts may run (approved,
deployed, superseded) are evaluated again. A blocking violation that the approval did not
carry opens a ``RetroHuntFlag`` on the version with a due date; it is told to the version's
owners and the security group, and, where the policy says so, it proposes revocation to the
board (decisions/retro_hunt.py, docs/lifecycle.md "Retro-hunt").
"""

from django.conf import settings
from django.db import models
from django_fsm import FSMField, transition

from governance.fsm import StateMachineMixin


class FlagStatus(models.TextChoices):
    OPEN = "open", "Open"
    CLEARED = "cleared", "Cleared"  # a later evaluation no longer finds the violation
    RESOLVED = "resolved", "Resolved"  # a security reviewer closed it, with a reason
    REVOKED = "revoked", "Revoked"  # the board revoked the version


F = FlagStatus


class RetroHuntFlag(StateMachineMixin, models.Model):
    version = models.ForeignKey("submissions.PluginVersion", on_delete=models.CASCADE, related_name="retro_flags")
    policy_key = models.SlugField(max_length=80)
    policy_version = models.PositiveIntegerField()
    severity = models.CharField(max_length=10)
    message = models.TextField(help_text="The policy's message: what is wrong and what to do.")
    trigger = models.CharField(max_length=300, help_text="What changed: the policies synced, or the advisories.")
    evaluation = models.ForeignKey(
        "decisions.PolicyEvaluation",
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The evaluation that found it.",
    )
    facts_digest = models.CharField(max_length=64, help_text="SHA-256 of the facts it was found on.")
    proposes_revocation = models.BooleanField(
        default=False, help_text="The policy asks the board to consider revoking the version (retro_hunt: revoke)."
    )
    due_on = models.DateField(help_text="When it must be resolved: the policy's severity sets how soon.")
    status = FSMField(max_length=10, choices=F.choices, default=F.OPEN, protected=True, db_index=True)
    opened_at = models.DateTimeField(auto_now_add=True)
    escalated_at = models.DateTimeField(null=True, blank=True, help_text="When its overdue notice went out.")
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    closing_reason = models.TextField(blank=True)

    class Meta:
        ordering = ("due_on", "pk")
        verbose_name = "retro-hunt flag"
        permissions = [("resolve_retrohuntflag", "Can resolve a retro-hunt flag")]
        constraints = [
            models.UniqueConstraint(
                fields=["version", "policy_key"], condition=models.Q(status="open"), name="one_open_retro_flag"
            )
        ]

    def __str__(self) -> str:
        return f"{self.policy_key} on {self.version}"

    @transition(field=status, source=F.OPEN, target=F.CLEARED)
    def clear(self) -> None:
        pass

    @transition(field=status, source=F.OPEN, target=F.RESOLVED)
    def resolve(self) -> None:
        pass

    @transition(field=status, source=F.OPEN, target=F.REVOKED)
    def revoke(self) -> None:
        pass
