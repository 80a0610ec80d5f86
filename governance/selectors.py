"""Reads on configuration and the audit log."""

from django.contrib.auth.models import User
from django.db.models import Model, Q, QuerySet

from .models import AuditEvent, Notification, NotificationPreference

# Events name their object by model label, and the chain's hashes cover it, so an event about
# a model that moved between apps keeps its old label: ``{current label: [former labels]}``,
# filled by the app a model moved to (decisions/hooks.py).
FORMER_LABELS: dict[str, list[str]] = {}


def audit_label_moved(*, label: str, former: str) -> None:
    """Events recorded under ``former`` are about the model now labelled ``label``."""
    FORMER_LABELS.setdefault(label, [])
    if former not in FORMER_LABELS[label]:
        FORMER_LABELS[label].append(former)


def audit_events_for(*, targets: list[Model]) -> QuerySet[AuditEvent]:
    """Audit events about any of ``targets``, newest first (one query), including those
    recorded before their model moved to another app."""
    condition = Q(pk__in=[])
    by_type: dict[str, list[str]] = {}
    for target in targets:
        label = target._meta.label_lower
        for object_type in [label, *FORMER_LABELS.get(label, [])]:
            by_type.setdefault(object_type, []).append(str(target.pk))
    for object_type, ids in by_type.items():
        condition |= Q(object_type=object_type, object_id__in=ids)
    return AuditEvent.objects.filter(condition).select_related("actor").order_by("-seq")


def notifications_of(*, user: User) -> QuerySet[Notification]:
    """Nobody reads anyone else's notifications."""
    return Notification.objects.filter(recipient=user)


def notification_preferences_of(*, user: User) -> QuerySet[NotificationPreference]:
    return NotificationPreference.objects.filter(user=user)
