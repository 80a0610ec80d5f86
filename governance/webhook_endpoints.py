"""Saving and deleting webhook endpoints: the admin's form and the API (governance/webhooks_api.py)
call the same two services. Apart from governance/webhooks.py, which the audit log imports to
queue deliveries, because these write audit events themselves."""

from django.db import transaction

from .audit import audit_record
from .errors import ValidationFailed
from .models import WebhookEndpoint

SAVED = ("name", "url", "events", "active")  # what an audit event of a save names (never the secret)


def webhook_endpoint_save(*, endpoint: WebhookEndpoint, actor, secret: str = "") -> WebhookEndpoint:
    """Create or change an endpoint, for the admin's form and the API alike (both validate its
    fields by the model's validators first). An empty ``secret`` keeps the current one (a new
    endpoint needs one); re-enabling an endpoint starts a fresh failure count (a rename does
    not); the audit event names the changed fields, not the secret."""
    with transaction.atomic():
        before = WebhookEndpoint.objects.select_for_update().filter(pk=endpoint.pk).first() if endpoint.pk else None
        if secret:
            endpoint.secret = secret
        elif before is not None:
            endpoint.secret = before.secret
        if not endpoint.secret:
            raise ValidationFailed(
                "A new endpoint needs a secret to sign its payloads.",
                code="secret_required",
                errors=[{"field": "secret", "code": "required", "message": "Required."}],
            )
        if endpoint.active and not (before is not None and before.active):
            endpoint.consecutive_failures, endpoint.disabled_reason = 0, ""
        endpoint.save()
        changed = [f for f in SAVED if before is None or getattr(before, f) != getattr(endpoint, f)]
        audit_record(
            actor=actor,
            action="webhook.create" if before is None else "webhook.change",
            target=endpoint,
            data={"changed": changed, "secret_changed": bool(secret) and before is not None},
        )
    return endpoint


def webhook_endpoint_delete(*, endpoint: WebhookEndpoint, actor) -> None:
    with transaction.atomic():
        audit_record(actor=actor, action="webhook.delete", target=endpoint, data={"name": endpoint.name})
        endpoint.delete()
