"""Risk rubrics and ratings, policies as code and their evaluations, decisions, exemptions.

These models began in the ``governance`` app and moved here without moving their data: each
keeps its table (``db_table``) and its history table (decisions/migrations/0001_initial.py).
"""

from django.conf import settings
from django.db import models
from django_fsm import FSMField, transition
from simple_history.models import HistoricalRecords

from governance.fsm import StateMachineMixin


class Band(models.TextChoices):
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"
    CRITICAL = "critical", "Critical"


class RiskRubric(models.Model):
    """One version of a weighted rubric. Frozen once a rating used it: a change to a used
    version is saved as the next version (decisions.rubric_versions.rubric_revise)."""

    key = models.SlugField(max_length=50, default="default")
    version = models.PositiveIntegerField(default=1)
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    factors = models.JSONField(help_text="{factor key: {weight, cap, mitigation}}; see docs/rubric.md.")
    bands = models.JSONField(help_text='Lowest total of each band above low, e.g. {"medium": 20, "high": 45, ...}.')
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords(table_name="governance_historicalriskrubric")

    class Meta:
        db_table = "governance_riskrubric"
        ordering = ("key", "-version")
        constraints = [models.UniqueConstraint(fields=["key", "version"], name="rubric_version_unique")]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"


class RiskRating(models.Model):
    """A version rated under one rubric version: every factor's inputs and contribution, the
    total, the band and the plain summary. ``digest`` is the SHA-256 of the canonical payload,
    so two ratings of the same facts under the same rubric have the same digest."""

    version = models.ForeignKey("submissions.PluginVersion", on_delete=models.CASCADE, related_name="risk_ratings")
    rubric = models.ForeignKey(RiskRubric, on_delete=models.PROTECT, related_name="ratings")
    trigger = models.CharField(max_length=30, help_text="What asked for it: a transition, the gate, a person.")
    facts = models.JSONField(help_text="The fact document the rating read (docs/policies.md).")
    breakdown = models.JSONField(help_text="One row per factor: inputs, units, weight, cap, contribution, cap hit.")
    total = models.DecimalField(max_digits=5, decimal_places=2)
    band = models.CharField(max_length=10, choices=Band.choices)
    summary = models.TextField()
    digest = models.CharField(max_length=64, db_index=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "governance_riskrating"
        ordering = ("-created_at", "-pk")
        indexes = [models.Index(fields=["version", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.version}: {self.total} ({self.band}) under {self.rubric}"


class PolicyMode(models.TextChoices):
    OFF = "off", "Off"
    LOG = "log", "Log only"
    ENFORCE = "enforce", "Enforce"


class RetroHuntAction(models.TextChoices):
    """What a violation found after approval does (decisions/retro_hunt.py)."""

    FLAG = "flag", "Flag the version for its owners and the security group"
    REVOKE = "revoke", "Flag it and propose revocation to the board"


class PolicySeverity(models.TextChoices):
    CRITICAL = "critical", "Critical"
    HIGH = "high", "High"
    MEDIUM = "medium", "Medium"
    LOW = "low", "Low"


class Policy(models.Model):
    """One version of a policy file from ``policies/``. ``expression`` is CEL over the fact
    document and must be true for a version to comply. Rows are never edited: a changed file
    becomes the next version, a removed file retires the current one."""

    key = models.SlugField(max_length=80)
    version = models.PositiveIntegerField(default=1)
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    severity = models.CharField(max_length=10, choices=PolicySeverity.choices)
    mode = models.CharField(max_length=10, choices=PolicyMode.choices)
    message = models.TextField(help_text="Shown when the policy is violated.")
    expression = models.TextField(help_text="CEL; true means the version complies.")
    retro_hunt = models.CharField(
        max_length=10,
        choices=RetroHuntAction.choices,
        default=RetroHuntAction.FLAG,
        help_text="When an approved version is found to violate it later (blocking violations only).",
    )
    source = models.CharField(max_length=300, blank=True, help_text="The file it was loaded from.")
    content_digest = models.CharField(max_length=64)
    is_current = models.BooleanField(default=True, db_index=True)
    retired_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords(table_name="governance_historicalpolicy")

    class Meta:
        db_table = "governance_policy"
        ordering = ("key", "-version")
        verbose_name_plural = "policies"
        constraints = [
            models.UniqueConstraint(fields=["key", "version"], name="policy_version_unique"),
            models.UniqueConstraint(fields=["key"], condition=models.Q(is_current=True), name="one_current_policy"),
        ]

    def __str__(self) -> str:
        return f"{self.key} v{self.version}"


class PolicyEvaluation(models.Model):
    """Every current policy evaluated against one version at one moment, with the verdict."""

    version = models.ForeignKey(
        "submissions.PluginVersion", on_delete=models.CASCADE, related_name="policy_evaluations"
    )
    rating = models.ForeignKey(RiskRating, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    trigger = models.CharField(max_length=30)
    passed = models.BooleanField(help_text="No enforce-mode violation that an exemption does not cover.")
    results = models.JSONField(help_text="One row per policy: key, version, mode, severity, outcome, message.")
    digest = models.CharField(
        max_length=64, blank=True, help_text="SHA-256 of the canonical results: what a decision names as approved."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "governance_policyevaluation"
        ordering = ("-created_at", "-pk")

    def __str__(self) -> str:
        return f"Policies on {self.version}: {'pass' if self.passed else 'fail'} ({self.trigger})"


class DecisionAction(models.TextChoices):
    APPROVE = "approve", "Approved"
    AUTO_APPROVE = "auto_approve", "Auto-approved"
    REJECT = "reject", "Rejected"


class Decision(models.Model):
    """The board's (or the system's) decision on a version, and the exact evidence it was
    taken on: the rating and the policy evaluation that were shown, by id and digest. Rows
    are only ever added (decisions.services.decision_record)."""

    version = models.ForeignKey("submissions.PluginVersion", on_delete=models.CASCADE, related_name="decisions")
    action = models.CharField(max_length=20, choices=DecisionAction.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    reason = models.TextField(blank=True)
    rating = models.ForeignKey(RiskRating, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    rating_digest = models.CharField(max_length=64, blank=True)
    evaluation = models.ForeignKey(PolicyEvaluation, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    evaluation_digest = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "governance_decision"
        ordering = ("-created_at", "-pk")

    def __str__(self) -> str:
        return f"{self.version}: {self.get_action_display().lower()}"


class ExemptionStatus(models.TextChoices):
    REQUESTED = "requested", "Requested"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    REVOKED = "revoked", "Revoked"
    EXPIRED = "expired", "Expired"


class ExemptionScope(models.TextChoices):
    VERSION = "version", "One version"
    PLUGIN = "plugin", "Every version of the plugin"


X = ExemptionStatus


class Exemption(StateMachineMixin, models.Model):
    """Leave to ship despite one policy or one finding (by fingerprint), for one version or
    every version of a plugin, until ``expires_at``. Only an approved, unexpired exemption
    suppresses anything, and what it suppresses is shown as exempted, never hidden."""

    plugin = models.ForeignKey("submissions.Plugin", on_delete=models.PROTECT, related_name="exemptions")
    version = models.ForeignKey(
        "submissions.PluginVersion",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="exemptions",
        help_text="The version, for scope *one version*.",
    )
    scope = models.CharField(max_length=10, choices=ExemptionScope.choices)
    policy_key = models.SlugField(max_length=80, blank=True, help_text="The policy it covers (every version of it).")
    finding_fingerprint = models.CharField(max_length=64, blank=True, help_text="The finding it covers.")
    finding_title = models.CharField(max_length=300, blank=True)
    justification = models.TextField()
    compensating_controls = models.JSONField(default=list, blank=True, help_text="One line per control.")
    status = FSMField(default=X.REQUESTED, choices=X.choices, protected=True, db_index=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    requested_at = models.DateTimeField(auto_now_add=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_reason = models.TextField(blank=True)
    expires_at = models.DateTimeField(db_index=True)
    warned_at = models.DateTimeField(null=True, blank=True, help_text="When the owners were told it expires soon.")
    history = HistoricalRecords(table_name="governance_historicalexemption")

    class Meta:
        db_table = "governance_exemption"
        ordering = ("expires_at", "pk")
        constraints = [
            models.CheckConstraint(
                condition=(models.Q(policy_key="") & ~models.Q(finding_fingerprint=""))
                | (~models.Q(policy_key="") & models.Q(finding_fingerprint="")),
                name="exemption_covers_one_thing",
            )
        ]

    def __str__(self) -> str:
        what = f"policy {self.policy_key}" if self.policy_key else f"finding {self.finding_title or 'by fingerprint'}"
        where = str(self.version) if self.scope == ExemptionScope.VERSION and self.version_id else str(self.plugin)
        return f"Exemption from {what} for {where}"

    @transition(field=status, source=X.REQUESTED, target=X.APPROVED)
    def approve(self) -> None:
        pass

    @transition(field=status, source=X.REQUESTED, target=X.REJECTED)
    def reject(self) -> None:
        pass

    @transition(field=status, source=[X.REQUESTED, X.APPROVED], target=X.REVOKED)
    def revoke(self) -> None:
        pass

    @transition(field=status, source=[X.REQUESTED, X.APPROVED], target=X.EXPIRED)
    def expire(self) -> None:
        pass


from .after_approval import (  # noqa: E402  (the after-approval models build on those above)
    Attestation,
    Deployment,
    DeploymentStatus,
    Environment,
    FeedEntry,
)
from .retro_hunt import FlagStatus, RetroHuntFlag  # noqa: E402
from .tuf import TufMetadata  # noqa: E402

__all__ = [
    "Attestation",
    "Band",
    "Decision",
    "DecisionAction",
    "Deployment",
    "DeploymentStatus",
    "Environment",
    "Exemption",
    "ExemptionScope",
    "ExemptionStatus",
    "FeedEntry",
    "FlagStatus",
    "Policy",
    "PolicyEvaluation",
    "PolicyMode",
    "PolicySeverity",
    "RetroHuntAction",
    "RetroHuntFlag",
    "RiskRating",
    "RiskRubric",
    "TufMetadata",
]
