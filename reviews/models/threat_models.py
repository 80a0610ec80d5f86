"""Threat models: their elements and threats."""

from django.conf import settings
from django.db import models
from django_fsm import FSMField, transition
from simple_history.models import HistoricalRecords

from governance.fsm import StateMachineMixin


class ThreatModelStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    SUBMITTED = "submitted", "Submitted for review"
    CHANGES_REQUESTED = "changes_requested", "Changes requested"
    ACCEPTED = "accepted", "Accepted"


class ThreatModel(StateMachineMixin, models.Model):
    """The author's threat model of one version, reviewed by the security reviewer."""

    version = models.OneToOneField("submissions.PluginVersion", on_delete=models.CASCADE, related_name="threat_model")
    status = FSMField(default=ThreatModelStatus.DRAFT, choices=ThreatModelStatus.choices, protected=True)
    summary = models.TextField(blank=True, help_text="What the plugin does, in the author's words.")
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    review_note = models.TextField(blank=True)
    history = HistoricalRecords()

    def __str__(self) -> str:
        return f"Threat model of {self.version}"

    @transition(
        field=status,
        source=[ThreatModelStatus.DRAFT, ThreatModelStatus.CHANGES_REQUESTED],
        target=ThreatModelStatus.SUBMITTED,
    )
    def submit(self) -> None:
        pass

    @transition(field=status, source=ThreatModelStatus.SUBMITTED, target=ThreatModelStatus.ACCEPTED)
    def accept(self) -> None:
        pass

    @transition(field=status, source=ThreatModelStatus.SUBMITTED, target=ThreatModelStatus.CHANGES_REQUESTED)
    def request_changes(self) -> None:
        pass


class ElementKind(models.TextChoices):
    ASSET = "asset", "Asset"
    ENTRY_POINT = "entry_point", "Entry point"
    TRUST_BOUNDARY = "trust_boundary", "Trust boundary"


class Source(models.TextChoices):
    AUTHOR = "author", "Author"
    MANIFEST = "manifest", "plugin.toml"
    BEHAVIOUR = "behaviour", "Observed in the sandbox"


class ThreatModelElement(models.Model):
    threat_model = models.ForeignKey(ThreatModel, on_delete=models.CASCADE, related_name="elements")
    kind = models.CharField(max_length=20, choices=ElementKind.choices)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.AUTHOR)
    history = HistoricalRecords()

    class Meta:
        ordering = ("kind", "pk")
        constraints = [models.UniqueConstraint(fields=["threat_model", "kind", "name"], name="one_element_per_name")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.name}"


class Stride(models.TextChoices):
    SPOOFING = "spoofing", "Spoofing"
    TAMPERING = "tampering", "Tampering"
    REPUDIATION = "repudiation", "Repudiation"
    INFORMATION_DISCLOSURE = "information_disclosure", "Information disclosure"
    DENIAL_OF_SERVICE = "denial_of_service", "Denial of service"
    ELEVATION_OF_PRIVILEGE = "elevation_of_privilege", "Elevation of privilege"


class Rating(models.TextChoices):
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"


class ThreatStatus(models.TextChoices):
    OPEN = "open", "Open"
    MITIGATED = "mitigated", "Mitigated"
    ACCEPTED = "accepted", "Accepted"
    TRANSFERRED = "transferred", "Transferred"


T = ThreatStatus


class Threat(StateMachineMixin, models.Model):
    """One threat of a threat model. The author addresses each open threat (mitigates it,
    accepts the risk or transfers it) and may reopen it while the model is editable; the
    security reviewer may reopen one while the model is under review (reviews/threat_model.py)."""

    threat_model = models.ForeignKey(ThreatModel, on_delete=models.CASCADE, related_name="threats")
    title = models.CharField(max_length=200)
    stride = models.CharField("STRIDE category", max_length=30, choices=Stride.choices)
    element = models.ForeignKey(
        ThreatModelElement, on_delete=models.SET_NULL, null=True, blank=True, related_name="threats"
    )
    likelihood = models.CharField(max_length=10, choices=Rating.choices, default=Rating.MEDIUM)
    impact = models.CharField(max_length=10, choices=Rating.choices, default=Rating.MEDIUM)
    mitigation = models.TextField(blank=True)
    status = FSMField(max_length=12, choices=ThreatStatus.choices, default=ThreatStatus.OPEN, protected=True)
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.AUTHOR)
    history = HistoricalRecords()

    class Meta:
        ordering = ("pk",)

    def __str__(self) -> str:
        return self.title

    @transition(field=status, source=T.OPEN, target=T.MITIGATED)
    def mitigate(self) -> None:
        """The plugin counters it, as its mitigation says."""

    @transition(field=status, source=T.OPEN, target=T.ACCEPTED)
    def accept_risk(self) -> None:
        """The author accepts the residual risk and says why."""

    @transition(field=status, source=T.OPEN, target=T.TRANSFERRED)
    def transfer(self) -> None:
        """Someone else carries it (the host platform, the operator), named in the reason."""

    @transition(field=status, source=[T.MITIGATED, T.ACCEPTED, T.TRANSFERRED], target=T.OPEN)
    def reopen(self) -> None:
        """How it was addressed no longer holds, in the author's or the security reviewer's view."""
