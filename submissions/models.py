"""Vendors, their plugins, and the submitted plugin versions with their lifecycle."""

import uuid

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models
from django.utils import timezone
from django_fsm import FSMField, transition
from rest_framework_api_key.crypto import KeyGenerator
from simple_history.models import HistoricalRecords

from governance.fsm import StateMachineMixin


class Organisation(models.Model):
    """A plugin vendor. Its members are the users of ``group``; they act as its authors."""

    name = models.CharField(max_length=120, unique=True)
    slug = models.SlugField(max_length=60, unique=True)
    group = models.OneToOneField(Group, on_delete=models.PROTECT, related_name="organisation")
    contact_email = models.EmailField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ("name",)

    def __str__(self) -> str:
        return self.name


class Plugin(models.Model):
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="plugins")
    name = models.SlugField(max_length=64, help_text="As in plugin.toml: lowercase, digits and '-'.")
    category = models.SlugField(max_length=64, help_text="Selects budgets and checklists.")
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ("organisation__name", "name")
        constraints = [models.UniqueConstraint(fields=["organisation", "name"], name="plugin_unique_per_org")]
        permissions = [("submit_plugin", "Can submit versions of the plugin")]

    def __str__(self) -> str:
        return f"{self.organisation.slug}/{self.name}"


class VersionStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    SUBMITTED = "submitted", "Submitted"
    IN_REVIEW = "in_review", "In review"
    CHANGES_REQUESTED = "changes_requested", "Changes requested"
    AWAITING_DECISION = "awaiting_decision", "Awaiting decision"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    WITHDRAWN = "withdrawn", "Withdrawn"
    DEPLOYED = "deployed", "Deployed"
    ROLLED_BACK = "rolled_back", "Rolled back"
    REVOKED = "revoked", "Revoked"
    SUPERSEDED = "superseded", "Superseded"


S = VersionStatus
WITHDRAWABLE = [S.DRAFT, S.SUBMITTED, S.IN_REVIEW, S.CHANGES_REQUESTED, S.AWAITING_DECISION]
# Approved and standing (not revoked, rolled back everywhere or withdrawn): what host platforms
# may run, what may be deployed, and what a later version is compared with.
STANDING_APPROVALS = (S.APPROVED, S.DEPLOYED, S.SUPERSEDED)


def artifact_path(instance: "PluginVersion | None", filename: str) -> str:
    # A random directory keeps the uploader's file name but never lets it collide or traverse.
    safe_name = filename.rsplit("/", 1)[-1].rsplit("\\", 1)[-1][:100] or "artifact"
    return f"artifacts/{uuid.uuid4().hex}/{safe_name}"


class PluginVersion(StateMachineMixin, models.Model):
    """One submitted archive of a plugin and its way through review.

    Transitions only set the status; services (submissions.services, reviews.services)
    lock the row, check permission, call them, save and write the audit event.
    """

    plugin = models.ForeignKey(Plugin, on_delete=models.PROTECT, related_name="versions")
    version = models.CharField(max_length=64)
    artifact = models.FileField(upload_to=artifact_path, max_length=255)
    artifact_name = models.CharField(max_length=255)
    sha256 = models.CharField("SHA-256", max_length=64)
    size = models.PositiveBigIntegerField(help_text="Bytes.")
    manifest = models.JSONField(default=dict, help_text="plugin.toml, parsed.")
    status = FSMField(default=S.DRAFT, choices=S.choices, protected=True, db_index=True)
    review_round = models.PositiveSmallIntegerField(
        default=0, help_text="Incremented each time the pipeline starts (first submission, each resubmission)."
    )
    revision = models.PositiveSmallIntegerField(
        default=1, help_text="The current revision: the artifact fields above are its copy."
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    submitted_at = models.DateTimeField(null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_reason = models.TextField(blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ("-created_at",)
        constraints = [models.UniqueConstraint(fields=["plugin", "version"], name="version_unique_per_plugin")]
        permissions = [
            ("decide_pluginversion", "Can approve, reject and revoke versions"),
            ("deploy_pluginversion", "Can deploy and roll back versions"),
        ]

    def __str__(self) -> str:
        return f"{self.plugin.name} {self.version}"

    @transition(field=status, source=S.DRAFT, target=S.SUBMITTED)
    def submit(self) -> None:
        pass

    @transition(field=status, source=S.SUBMITTED, target=S.IN_REVIEW)
    def start(self) -> None:
        self.review_round += 1

    @transition(field=status, source=S.IN_REVIEW, target=S.CHANGES_REQUESTED)
    def request_changes(self) -> None:
        pass

    @transition(field=status, source=S.CHANGES_REQUESTED, target=S.SUBMITTED)
    def resubmit(self) -> None:
        pass

    @transition(field=status, source=S.IN_REVIEW, target=S.AWAITING_DECISION)
    def await_decision(self) -> None:
        pass

    @transition(field=status, source=[S.IN_REVIEW, S.AWAITING_DECISION], target=S.REJECTED)
    def reject(self) -> None:
        pass

    @transition(field=status, source=S.AWAITING_DECISION, target=S.APPROVED)
    def approve(self) -> None:
        pass

    @transition(field=status, source=WITHDRAWABLE, target=S.WITHDRAWN)
    def withdraw(self) -> None:
        pass

    @transition(field=status, source=[S.APPROVED, S.DEPLOYED], target=S.DEPLOYED)
    def deploy(self) -> None:
        pass

    @transition(field=status, source=S.DEPLOYED, target=S.ROLLED_BACK)
    def roll_back(self) -> None:
        pass

    @transition(field=status, source=[S.APPROVED, S.DEPLOYED, S.SUPERSEDED, S.ROLLED_BACK], target=S.REVOKED)
    def revoke(self) -> None:
        pass

    @transition(field=status, source=S.DEPLOYED, target=S.SUPERSEDED)
    def supersede(self) -> None:
        pass

    @transition(field=status, source=S.SUPERSEDED, target=S.DEPLOYED)
    def reinstate(self) -> None:
        pass


class VersionRevision(models.Model):
    """One archive a version was reviewed with. Revision 1 is the upload; an author who
    answers a request for changes with a fix adds the next. The version's own artifact
    fields copy its current revision (checks and intake read those); earlier revisions
    and their files stay as the record. ``files`` indexes the archive's members, so what
    changed between two revisions is a comparison of two dicts (submissions/diff.py)."""

    version = models.ForeignKey(PluginVersion, on_delete=models.PROTECT, related_name="revisions")
    number = models.PositiveSmallIntegerField()
    artifact = models.FileField(upload_to=artifact_path, max_length=255)
    artifact_name = models.CharField(max_length=255)
    sha256 = models.CharField("SHA-256", max_length=64)
    size = models.PositiveBigIntegerField(help_text="Bytes.")
    manifest = models.JSONField(default=dict, help_text="plugin.toml, parsed.")
    reason = models.TextField(blank=True, help_text="The author's reason for this revision.")
    files = models.JSONField(
        default=dict,
        blank=True,
        help_text="The archive's files, read at intake: path → {size, sha256, text}. Empty if it could not be read.",
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    # The file index never changes after intake and can hold thousands of entries: history
    # rows would only copy it.
    history = HistoricalRecords(excluded_fields=["files"])

    class Meta:
        ordering = ("version", "-number")
        constraints = [models.UniqueConstraint(fields=["version", "number"], name="revision_unique_per_version")]

    def __str__(self) -> str:
        return f"{self.version} r{self.number}"


class TokenScope(models.TextChoices):
    """What an integration token may be used for; each API endpoint names the scope it needs
    (``token_scopes`` on its view), and an endpoint that names none refuses every token."""

    SUBMIT = "submit", "submit: create drafts, submit, resubmit and withdraw versions; reply to the reviewers"
    REPORT = "report", "report: post check reports and wait for the gate"
    READ = "read", "read: plugins, versions, gates, reports, attestations, findings, threads, exemptions, deployments"
    TRIAGE = "triage", "triage: findings and their triage, replies in threads"
    FEED = "feed", "feed: the feed, deployments and the TUF repository host platforms read"
    ADVISORIES = "advisories", "advisories: import advisories"
    WEBHOOKS = "webhooks", "webhooks: manage webhook endpoints (platform admins)"


class IntegrationToken(models.Model):
    """A key an external tool (a CI job, a host platform, a ticketing system) sends as
    ``Authorization: Token <prefix>.<secret>``. Only the prefix and a SHA-512 hash of the key
    are stored (djangorestframework-api-key's ``KeyGenerator``: the key is random, 32
    characters after the prefix, so a fast hash is enough); the key itself is shown once, when
    it is created (``token_create``).

    A request with the token acts as its owner, narrowed three ways: only for the endpoints
    its scopes allow, only on the organisation's plugins when it is bound to one, and at most
    ``rate_per_minute`` requests a minute (429 with Retry-After beyond)."""

    key_generator = KeyGenerator()

    name = models.CharField(max_length=80, help_text="What uses it, e.g. acme-exporter CI.")
    prefix = models.CharField(max_length=8, unique=True, editable=False)
    hashed_key = models.CharField(max_length=150, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="integration_tokens")
    organisation = models.ForeignKey(
        Organisation,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="integration_tokens",
        help_text="Bound to this organisation: the token reads and acts on its plugins only. "
        "Tokens that authors create are always bound to their organisation.",
    )
    scopes = models.JSONField(default=list, help_text="What the token may be used for (TokenScope).")
    rate_per_minute = models.PositiveIntegerField(
        default=120, help_text="Requests a minute, at most; beyond it the API answers 429 with Retry-After."
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    expiry_date = models.DateTimeField(
        null=True, blank=True, verbose_name="expires", help_text="From then on the token is refused."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked = models.BooleanField(default=False, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+", editable=False
    )

    class Meta:
        ordering = ("-created_at",)
        verbose_name = "integration token"
        verbose_name_plural = "integration tokens"
        permissions = [
            ("manage_any_integrationtoken", "Can create and revoke integration tokens for any user and organisation")
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(rate_per_minute__gte=1), name="token_rate_at_least_one"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def has_expired(self) -> bool:
        return self.expiry_date is not None and self.expiry_date <= timezone.now()

    @property
    def usable(self) -> bool:
        return not self.revoked and not self.has_expired

    def matches(self, key: str) -> bool:
        return self.key_generator.verify(key, self.hashed_key)
