"""Reads on configuration and the audit log."""

from django.db.models import Model, Q, QuerySet

from .models import AuditEvent, Notification, NotificationPreference


def audit_events_for(*, targets: list[Model]) -> QuerySet[AuditEvent]:
    """Audit events about any of ``targets``, newest first (one query)."""
    condition = Q(pk__in=[])
    by_type: dict[str, list[str]] = {}
    for target in targets:
        by_type.setdefault(target._meta.label_lower, []).append(str(target.pk))
    for object_type, ids in by_type.items():
        condition |= Q(object_type=object_type, object_id__in=ids)
    return AuditEvent.objects.filter(condition).select_related("actor").order_by("-seq")


def notifications_of(*, user) -> QuerySet[Notification]:
    """Nobody reads anyone else's notifications."""
    return Notification.objects.filter(recipient=user)


def notification_preferences_of(*, user) -> QuerySet[NotificationPreference]:
    return NotificationPreference.objects.filter(user=user)
