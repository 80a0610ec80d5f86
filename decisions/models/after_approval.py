"""After the board's decision: the signed attestation of an approval, the environments a
version is deployed to, and the feed host platforms poll (docs/hosts.md).

A version's own status (approved, deployed, superseded, rolled back, revoked) says where it
stands overall; ``Deployment`` says where it runs, one row per version and environment; the
``FeedEntry`` log is what host platforms learn, in order, each change once.
"""

from django.conf import settings
from django.db import models
from django_fsm import FSMField, transition
from simple_history.models import HistoricalRecords

from governance.fsm import StateMachineMixin


class Attestation(models.Model):
    """The signed statement of one approval: an in-toto Statement v1 whose predicate is a SLSA
    Verification Summary, in a DSSE envelope signed with Warden's Ed25519 key. Never edited: a
    revoked approval's attestation stays verifiable as a signature; the feed says it is revoked."""

    version = models.ForeignKey("submissions.PluginVersion", on_delete=models.PROTECT, related_name="attestations")
    decision = models.OneToOneField("decisions.Decision", on_delete=models.PROTECT, related_name="attestation")
    statement = models.JSONField(help_text="The in-toto statement, as signed.")
    envelope = models.JSONField(help_text="The DSSE envelope: payloadType, payload (base64), signatures.")
    sha256 = models.CharField("SHA-256 of the envelope", max_length=64, unique=True)
    key_id = models.CharField(max_length=128, help_text="The signing key's id (securesystemslib keyid).")
    issued_at = models.DateTimeField()

    class Meta:
        ordering = ("-issued_at", "-pk")

    def __str__(self) -> str:
        return f"Attestation of {self.version} ({self.sha256[:12]})"


class Environment(models.Model):
    """Where versions run, such as staging before production: admin-edited."""

    key = models.SlugField(max_length=50, unique=True)
    name = models.CharField(max_length=100)
    host_platform = models.ForeignKey("governance.HostPlatform", on_delete=models.PROTECT, related_name="environments")
    order = models.PositiveSmallIntegerField(default=1, help_text="Lower runs first: staging 1, production 2.")
    requires_previous = models.BooleanField(
        default=False,
        help_text="A version must have run in an environment of a lower order first (and not been rolled back there).",
    )
    active = models.BooleanField(default=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ("order", "key")

    def __str__(self) -> str:
        return self.name


class DeploymentStatus(models.TextChoices):
    ACTIVE = "active", "Running"
    SUPERSEDED = "superseded", "Superseded"
    ROLLED_BACK = "rolled_back", "Rolled back"
    REVOKED = "revoked", "Revoked"


D = DeploymentStatus


class Deployment(StateMachineMixin, models.Model):
    """One version in one environment. Deploying a newer version of the plugin supersedes the
    older one in that environment only; a rollback there reinstates the one it superseded."""

    version = models.ForeignKey("submissions.PluginVersion", on_delete=models.PROTECT, related_name="deployments")
    environment = models.ForeignKey(Environment, on_delete=models.PROTECT, related_name="deployments")
    status = FSMField(max_length=12, choices=D.choices, default=D.ACTIVE, protected=True, db_index=True)
    attestation = models.ForeignKey(
        Attestation,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="deployments",
        help_text="The approval's attestation the deployment relied on (none only for deployments migrated from "
        "before attestations existed).",
    )
    deployed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="Empty only for a deployment migrated from before environments whose deployer no record names.",
    )
    deployed_at = models.DateTimeField()
    reason = models.TextField(blank=True)
    ended_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.TextField(blank=True)
    incident = models.CharField(max_length=200, blank=True, help_text="The incident reference of a rollback.")
    history = HistoricalRecords()

    class Meta:
        ordering = ("environment__order", "-deployed_at", "-pk")
        constraints = [
            models.UniqueConstraint(
                fields=["version", "environment"],
                condition=models.Q(status="active"),
                name="one_active_deployment_per_version_and_environment",
            ),
        ]
        indexes = [models.Index(fields=["environment", "status"])]

    def __str__(self) -> str:
        return f"{self.version} in {self.environment}"

    @transition(field=status, source=D.ACTIVE, target=D.SUPERSEDED)
    def supersede(self) -> None:
        """A newer version of the plugin was deployed to this environment."""

    @transition(field=status, source=D.SUPERSEDED, target=D.ACTIVE)
    def reinstate(self) -> None:
        """The version that superseded it was rolled back in this environment."""

    @transition(field=status, source=D.ACTIVE, target=D.ROLLED_BACK)
    def roll_back(self) -> None:
        """Taken out of this environment, with a reason and an incident reference."""

    @transition(field=status, source=[D.ACTIVE, D.SUPERSEDED], target=D.REVOKED)
    def revoke(self) -> None:
        """The approval was revoked: the version stops everywhere."""


class FeedEntry(models.Model):
    """One change host platforms must learn, in order: a version approved, deployed to or
    rolled back in an environment, superseded, revoked. ``seq`` only grows; ``?since=N``
    returns the entries after N. ``state`` is what the feed says of the version from then on."""

    seq = models.BigAutoField(primary_key=True)
    version = models.ForeignKey("submissions.PluginVersion", on_delete=models.PROTECT, related_name="feed_entries")
    event = models.CharField(max_length=30, help_text="approved, deployed, superseded, rolled_back, revoked, ...")
    state = models.JSONField(help_text="The version as the feed shows it after this change.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("seq",)
        verbose_name_plural = "feed entries"
        permissions = [("read_feed", "Can read the feed and the TUF repository of approved plugins")]

    def __str__(self) -> str:
        return f"#{self.seq} {self.event} {self.version_id}"
