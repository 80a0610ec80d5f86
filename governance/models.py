"""Platform-wide configuration (the stage pipeline) and the tamper-evident audit log."""

import hashlib
import json

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import models
from simple_history.models import HistoricalRecords

from . import roles
from .checks import REGISTRY

GENESIS_HASH = "0" * 64


def default_reminder_fractions() -> list[float]:
    return [0.5, 0.9]


class StageKind(models.TextChoices):
    ELIGIBILITY = "eligibility", "Eligibility"
    SECURITY = "security", "Security"
    PERFORMANCE = "performance", "Performance"
    COMPLIANCE = "compliance", "Compliance"
    DECISION = "decision", "Decision"


class Stage(models.Model):
    """One row of the review pipeline. Stages with the same order run in parallel.

    A stage of kind *decision* is the approval board's: when every blocking stage before
    it has passed, the version awaits a decision and the decision stage starts.
    """

    key = models.SlugField(max_length=50, unique=True)
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=20, choices=StageKind.choices)
    order = models.PositiveSmallIntegerField(help_text="Stages with the same order run in parallel.")
    owner_group = models.ForeignKey(
        Group,
        on_delete=models.PROTECT,
        related_name="owned_stages",
        help_text="Members of this group review the stage.",
    )
    escalation_group = models.ForeignKey(
        Group,
        on_delete=models.PROTECT,
        related_name="escalated_stages",
        null=True,
        blank=True,
        help_text="Told when a review of this stage breaches its SLA.",
    )
    sla_hours = models.PositiveIntegerField(default=48, help_text="Working hours allowed from start to decision.")
    calendar = models.ForeignKey(
        "WorkingCalendar",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="stages",
        help_text="When the SLA clock runs; empty: the default calendar (or around the clock if none).",
    )
    reminder_fractions = models.JSONField(
        default=default_reminder_fractions,
        blank=True,
        help_text="Remind the reviewer when these fractions of the window have passed, e.g. [0.5, 0.9].",
    )
    escalation_repeat_hours = models.PositiveIntegerField(
        default=24, help_text="While breached, escalate again every this many working hours."
    )
    blocking = models.BooleanField(
        default=True, help_text="A blocking stage must pass (or be waived) before the next order starts."
    )
    required_qualification = models.CharField(
        max_length=20,
        choices=StageKind.choices,
        blank=True,
        help_text="Reviewers need a current qualification of this kind to be assigned or to sign off.",
    )
    active = models.BooleanField(default=True, help_text="Inactive stages are left out of new rounds.")
    checks = models.JSONField(
        default=list, blank=True, help_text="Keys of the automated checks the stage runs when it starts."
    )
    auto_pass = models.BooleanField(
        default=False, help_text="The stage passes on its own (as the system) when every check it runs passes."
    )
    description = models.TextField(blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ("order", "key")

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        for field in ("owner_group", "escalation_group"):
            group = getattr(self, field, None)  # unset: clean_fields reports it
            if group is not None and group.name not in roles.STAGE_ROLES:
                raise ValidationError({field: f"Only a role group may own or escalate a stage, not {group}."})
        fractions = self.reminder_fractions
        if not isinstance(fractions, list) or not all(
            isinstance(f, int | float) and not isinstance(f, bool) and 0 < f < 1 for f in fractions
        ):
            raise ValidationError({"reminder_fractions": "A list of fractions between 0 and 1, e.g. [0.5, 0.9]."})
        unknown = [key for key in self.checks if key not in REGISTRY] if isinstance(self.checks, list) else ["?"]
        if unknown:
            raise ValidationError(
                {"checks": f"Unknown checks: {', '.join(map(str, unknown))}. Known: {', '.join(sorted(REGISTRY))}."}
            )


class HostPlatform(models.Model):
    """A platform that runs plugins: its API version decides ``host_api`` compatibility and
    its resource limits are the default performance budgets."""

    name = models.CharField(max_length=100, unique=True)
    api_version = models.CharField(max_length=32, help_text="PEP 440 version of the plugin API it offers.")
    resource_limits = models.JSONField(
        default=dict, blank=True, help_text='e.g. {"memory_mb": 256, "cpu_seconds": 10, "startup_ms": 500}'
    )
    is_default = models.BooleanField(default=False, help_text="The platform eligibility checks compare against.")
    history = HistoricalRecords()

    class Meta:
        ordering = ("name",)
        constraints = [
            models.UniqueConstraint(fields=["is_default"], condition=models.Q(is_default=True), name="one_default_host")
        ]

    def __str__(self) -> str:
        return f"{self.name} (API {self.api_version})"


class AllowedLicence(models.Model):
    """The licence allow list: a plugin whose manifest names another licence is not eligible."""

    spdx_id = models.CharField("SPDX identifier", max_length=100, unique=True)
    name = models.CharField(max_length=200, blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ("spdx_id",)

    def __str__(self) -> str:
        return self.spdx_id


class AuditChainHead(models.Model):
    """The single row every audit write locks: it serialises writers and anchors the tail,
    so that deleting the newest rows is detected as well."""

    seq = models.PositiveBigIntegerField(default=0)
    hash = models.CharField(max_length=64, default=GENESIS_HASH)

    def __str__(self) -> str:
        return f"audit head #{self.seq}"


class AuditEvent(models.Model):
    """An append-only, hash-chained record of one action. Never updated, never deleted."""

    seq = models.PositiveBigIntegerField(unique=True, editable=False)
    created_at = models.DateTimeField(editable=False, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    actor_username = models.CharField(max_length=150)
    action = models.CharField(max_length=64, db_index=True)
    object_type = models.CharField(max_length=100)
    object_id = models.CharField(max_length=64)
    object_repr = models.CharField(max_length=200)
    from_state = models.CharField(max_length=40, blank=True)
    to_state = models.CharField(max_length=40, blank=True)
    reason = models.TextField(blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    data = models.JSONField(default=dict, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ("-seq",)
        indexes = [models.Index(fields=["object_type", "object_id", "seq"])]

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} {self.object_repr}"

    def save(self, *args, **kwargs):
        # An integrity guard, not business logic: the ORM can only ever append.
        if not self._state.adding:
            raise ValueError("Audit events are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValueError("Audit events are append-only.")

    def compute_hash(self) -> str:
        payload = [
            self.seq,
            self.created_at.isoformat(),
            self.actor_id,
            self.actor_username,
            self.action,
            self.object_type,
            str(self.object_id),
            self.object_repr,
            self.from_state,
            self.to_state,
            self.reason,
            self.request_id,
            self.data,
            self.prev_hash,
        ]
        canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(canonical.encode()).hexdigest()


class WorkingCalendar(models.Model):
    """When SLA clocks run: working days and hours in a time zone, minus holidays."""

    name = models.CharField(max_length=100, unique=True)
    time_zone = models.CharField(max_length=64, default="UTC", help_text="IANA name, e.g. Europe/Berlin.")
    working_days = models.JSONField(default=list, help_text="ISO weekdays, 1 = Monday … 7 = Sunday.")
    day_start = models.TimeField(default="09:00")
    day_end = models.TimeField(default="17:00")
    is_default = models.BooleanField(default=False, help_text="Used by stages that name no calendar.")
    history = HistoricalRecords()

    class Meta:
        ordering = ("name",)
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"], condition=models.Q(is_default=True), name="one_default_calendar"
            )
        ]

    def __str__(self) -> str:
        return self.name


class Holiday(models.Model):
    calendar = models.ForeignKey(WorkingCalendar, on_delete=models.CASCADE, related_name="holidays")
    date = models.DateField()
    name = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ("date",)
        constraints = [models.UniqueConstraint(fields=["calendar", "date"], name="one_holiday_per_date")]

    def __str__(self) -> str:
        return f"{self.date} {self.name}"


class ReviewerProfile(models.Model):
    """Who leads a reviewer: the lead is told when the reviewer's work breaches its SLA."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="reviewer_profile")
    lead = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="led_reviewers"
    )
    history = HistoricalRecords()

    def __str__(self) -> str:
        return f"{self.user} (lead: {self.lead or '—'})"


class Notification(models.Model):
    """The outbox: written in the transaction of the event it tells about, sent later by a
    scheduled task that claims rows one at a time, so nothing is lost and nothing is sent twice."""

    recipient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    event = models.CharField(max_length=64, db_index=True)
    subject = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    url = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    email = models.BooleanField(default=True, help_text="Also send by e-mail.")
    sent_at = models.DateTimeField(null=True, blank=True, help_text="When the e-mail went out.")
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(db_index=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at", "-pk")
        indexes = [models.Index(fields=["recipient", "read_at"])]

    def __str__(self) -> str:
        return f"{self.recipient}: {self.subject}"


class NotificationPreference(models.Model):
    """A user's choice per event: in the admin, by e-mail, both or neither (default: both)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_prefs")
    event = models.CharField(max_length=64)
    in_admin = models.BooleanField(default=True)
    email = models.BooleanField(default=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "event"], name="one_preference_per_event")]

    def __str__(self) -> str:
        return f"{self.user} {self.event}"


# urllib would also open ftp:// and file://
validate_webhook_url = URLValidator(
    schemes=["https", "http"], message="Enter an https:// (or http://) URL.", code="scheme"
)  # its own code: a model field would put back its "Enter a valid URL." for "invalid"


def validate_events(value: object) -> None:
    if not isinstance(value, list) or not all(isinstance(event, str) and event for event in value):
        raise ValidationError('A list of audit actions, or ["*"] for all.')


class WebhookEndpoint(models.Model):
    """Where ticketing and chat tools want to hear about events, and which ones."""

    name = models.CharField(max_length=100, unique=True)
    url = models.URLField(max_length=500, validators=[validate_webhook_url])
    secret = models.CharField(max_length=200, help_text="Signs every payload (HMAC-SHA256, X-Warden-Signature).")
    events = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_events],
        help_text='Audit actions to send, e.g. ["version.approve", "stage.fail"]; ["*"]: all.',
    )
    active = models.BooleanField(default=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    disabled_reason = models.CharField(max_length=300, blank=True)
    history = HistoricalRecords(excluded_fields=["secret"])  # the history pages must not show it

    class Meta:
        ordering = ("name",)

    def __str__(self) -> str:
        return self.name

    def wants(self, event: str) -> bool:
        return "*" in self.events or event in self.events


class WebhookDelivery(models.Model):
    """One event for one endpoint: an outbox row, retried with backoff until delivered."""

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    event = models.CharField(max_length=64)
    payload = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(db_index=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    abandoned = models.BooleanField(default=False, help_text="Not retried: the endpoint was disabled.")

    class Meta:
        ordering = ("-created_at", "-pk")
        verbose_name_plural = "webhook deliveries"

    def __str__(self) -> str:
        return f"{self.event} to {self.endpoint}"


class WebhookAttempt(models.Model):
    """The delivery log: every POST, with the response code or the error."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="log")
    at = models.DateTimeField(auto_now_add=True)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ("at", "pk")

    def __str__(self) -> str:
        return f"{self.status_code or self.error[:40]}"
