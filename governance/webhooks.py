"""Webhooks: every audit event an endpoint subscribes to becomes a delivery row in the same
transaction; ``webhooks_send`` (scheduled) POSTs them, signed, and retries with backoff.

Payload (version 1): ``{"version": 1, "event", "id", "occurred_at", "actor", "object":
{"type", "id", "repr"}, "from_state", "to_state", "reason", "request_id", "data"}``.
Headers: ``X-Warden-Event``, ``X-Warden-Delivery`` and ``X-Warden-Signature:
sha256=<hex>``, the HMAC-SHA256 of the raw body with the endpoint's secret.
After ``WARDEN_WEBHOOK_DISABLE_AFTER`` failures in a row the endpoint is disabled, its
pending deliveries abandoned, and the platform admins told.
"""

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone

from .models import AuditEvent, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from .notifications import notify_platform_admins, unclaimed

PAYLOAD_VERSION = 1
CLAIM = timedelta(minutes=5)
MAX_BACKOFF = timedelta(hours=6)


def enqueue_for(event: AuditEvent) -> None:
    """Inside the audit event's transaction: one delivery per subscribed, active endpoint."""
    endpoints = [e for e in WebhookEndpoint.objects.filter(active=True) if e.wants(event.action)]
    if not endpoints:
        return
    payload = payload_for(event)
    now = timezone.now()
    WebhookDelivery.objects.bulk_create(
        WebhookDelivery(endpoint=e, event=event.action, payload=payload, next_attempt_at=now) for e in endpoints
    )


def payload_for(event: AuditEvent) -> dict:
    return {
        "version": PAYLOAD_VERSION,
        "event": event.action,
        "id": event.seq,
        "occurred_at": event.created_at.isoformat(),
        "actor": event.actor_username,
        "object": {"type": event.object_type, "id": event.object_id, "repr": event.object_repr},
        "from_state": event.from_state,
        "to_state": event.to_state,
        "reason": event.reason,
        "request_id": event.request_id,
        "data": event.data,
    }


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def webhooks_send() -> int:
    now = timezone.now()
    due = WebhookDelivery.objects.filter(
        unclaimed(now),
        delivered_at__isnull=True,
        abandoned=False,
        next_attempt_at__lte=now,
        endpoint__active=True,
    )
    return sum(_deliver(pk) for pk in list(due.order_by("next_attempt_at").values_list("pk", flat=True)[:100]))


def _deliver(delivery_id: int) -> int:
    now = timezone.now()
    token = now + CLAIM  # only the holder of this claim may finish the row
    claimed = WebhookDelivery.objects.filter(
        unclaimed(now),
        pk=delivery_id,
        delivered_at__isnull=True,
        abandoned=False,
    ).update(claimed_until=token)
    if not claimed:
        return 0
    delivery = WebhookDelivery.objects.select_related("endpoint").get(pk=delivery_id)
    status, error, elapsed = _post(delivery)
    WebhookAttempt.objects.create(delivery=delivery, status_code=status, error=error, duration_ms=elapsed)
    if status is not None and 200 <= status < 300:
        WebhookDelivery.objects.filter(pk=delivery_id, claimed_until=token).update(
            delivered_at=timezone.now(), claimed_until=None, attempts=F("attempts") + 1
        )
        WebhookEndpoint.objects.filter(pk=delivery.endpoint_id).update(consecutive_failures=0)
        return 1
    _failed(delivery, error or f"HTTP {status}", token)
    return 0


def _post(delivery: WebhookDelivery) -> tuple[int | None, str, int]:
    if not delivery.endpoint.url.lower().startswith(("https://", "http://")):  # a row saved before the validator
        return None, "not an http(s) URL: not posted", 0
    body = json.dumps(delivery.payload, sort_keys=True, separators=(",", ":")).encode()
    request = urllib.request.Request(  # noqa: S310 - http(s) only: checked above and by the model's validator
        delivery.endpoint.url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "Warden-Webhooks/1",
            "X-Warden-Event": delivery.event,
            "X-Warden-Delivery": str(delivery.pk),
            "X-Warden-Signature": signature(delivery.endpoint.secret, body),
        },
    )
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=settings.WARDEN_WEBHOOK_TIMEOUT) as response:  # noqa: S310
            return response.status, "", int((time.monotonic() - started) * 1000)
    except urllib.error.HTTPError as exc:
        return exc.code, "", int((time.monotonic() - started) * 1000)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return None, str(getattr(exc, "reason", exc))[:2000], int((time.monotonic() - started) * 1000)


def _failed(delivery: WebhookDelivery, error: str, token) -> None:
    attempts = delivery.attempts + 1
    backoff = min(timedelta(minutes=2**attempts), MAX_BACKOFF)
    with transaction.atomic():
        WebhookDelivery.objects.filter(pk=delivery.pk, claimed_until=token).update(
            attempts=attempts, next_attempt_at=timezone.now() + backoff, claimed_until=None
        )
        endpoint = WebhookEndpoint.objects.select_for_update().get(pk=delivery.endpoint_id)
        endpoint.consecutive_failures += 1
        if endpoint.active and endpoint.consecutive_failures >= settings.WARDEN_WEBHOOK_DISABLE_AFTER:
            _disable(endpoint, error)
        else:
            endpoint.save(update_fields=["consecutive_failures"])


def _disable(endpoint: WebhookEndpoint, error: str) -> None:
    endpoint.active = False
    endpoint.disabled_reason = f"Disabled after {endpoint.consecutive_failures} failures in a row; last: {error}"[:300]
    endpoint._change_reason = "webhook.disable"  # type: ignore[attr-defined]  # simple_history reads it
    endpoint.save()
    WebhookDelivery.objects.filter(endpoint=endpoint, delivered_at__isnull=True).update(abandoned=True)
    notify_platform_admins(
        event="webhook.disabled",
        subject=f"Webhook {endpoint} was disabled",
        body=endpoint.disabled_reason,
        url=reverse("admin:governance_webhookendpoint_change", args=[endpoint.pk]),
    )
