"""Vendors, their plugins, and the submitted plugin versions with their lifecycle."""

import uuid

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models
from django.utils import timezone
from django_fsm import FSMField, FSMModelMixin, transition
from simple_history.models import HistoricalRecords


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


class PluginVersion(FSMModelMixin, models.Model):
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
