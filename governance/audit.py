"""Writing and verifying the hash-chained audit log.

Each event stores the SHA-256 of the previous event (``prev_hash``) and its own hash over
its content. Writers lock the single ``AuditChainHead`` row, so the chain never forks,
and the head remembers the newest event, so removing the tail is detected too.
"""

from dataclasses import dataclass

from django.db import models, transaction
from django.utils import timezone

from . import webhooks
from .models import GENESIS_HASH, AuditChainHead, AuditEvent
from .request_context import current_request_id, current_token_label

SYSTEM_ACTOR = "system"


def audit_lock() -> AuditChainHead:
    """Lock the chain head until the transaction ends. Every audited write takes it last; a
    service that must lock something else first (a rubric) takes it first, in this order."""
    head = AuditChainHead.objects.select_for_update().filter(pk=1).first()
    if head is None:
        AuditChainHead.objects.get_or_create(pk=1)
        head = AuditChainHead.objects.select_for_update().get(pk=1)
    return head


def audit_record(
    *,
    actor,
    action: str,
    target: models.Model,
    from_state: str = "",
    to_state: str = "",
    reason: str = "",
    data: dict | None = None,
) -> AuditEvent:
    """Append one event. Must run inside the transaction that makes the change."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audit_record() must run inside the transaction of the change it records.")
    head = audit_lock()
    user = actor if getattr(actor, "pk", None) else None
    event = AuditEvent(
        seq=head.seq + 1,
        created_at=timezone.now(),
        actor=user,
        actor_username=user.get_username() if user else SYSTEM_ACTOR,
        action=action,
        object_type=target._meta.label_lower,
        object_id=str(target.pk),
        object_repr=str(target)[:200],
        from_state=from_state,
        to_state=to_state,
        reason=reason,
        request_id=current_request_id(),
        data=canonical_data(with_token(data or {})),
        prev_hash=head.hash,
    )
    event.hash = event.compute_hash()
    event.save()
    head.seq, head.hash = event.seq, event.hash
    head.save(update_fields=["seq", "hash"])
    webhooks.enqueue_for(event)
    return event


def with_token(data: dict) -> dict:
    """A change made through the API with an integration token names the token beside its
    owner (the actor)."""
    label = current_token_label()
    return {**data, "via_token": label} if label else data


def canonical_data(value):
    """JSON that reads back from any database exactly as written: PostgreSQL's jsonb
    rewrites floats (1e16 comes back as 10000000000000000), so floats are stored as text."""
    if isinstance(value, dict):
        return {str(k): canonical_data(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [canonical_data(v) for v in value]
    if value is None or isinstance(value, (bool, int, str)):
        return value
    return str(value)


@dataclass(frozen=True)
class AuditVerification:
    ok: bool
    checked: int
    head_hash: str
    broken_seq: int | None = None
    problem: str = ""


def audit_verify(*, progress=None) -> AuditVerification:
    """Walk the chain in order and report the first row that does not fit.

    The head is read first and only rows up to it are checked, so events appended while
    the walk runs are left for the next verification instead of raising a false alarm.
    """
    head = AuditChainHead.objects.filter(pk=1).first()
    head_seq, head_hash = (head.seq, head.hash) if head else (0, GENESIS_HASH)
    expected_seq, expected_prev, checked = 1, GENESIS_HASH, 0
    for event in AuditEvent.objects.filter(seq__lte=head_seq).order_by("seq").iterator(chunk_size=2000):
        if event.seq != expected_seq:
            return _broken(checked, expected_prev, expected_seq, f"row #{expected_seq} is missing")
        if event.prev_hash != expected_prev:
            return _broken(checked, expected_prev, event.seq, "its previous-row hash does not match the row before it")
        if event.compute_hash() != event.hash:
            return _broken(checked, expected_prev, event.seq, "its content does not match its hash (altered)")
        expected_seq, expected_prev, checked = event.seq + 1, event.hash, checked + 1
        if progress:
            progress(checked)
    if (head_seq, head_hash) != (expected_seq - 1, expected_prev):
        return _broken(
            checked, expected_prev, expected_seq, f"rows after #{expected_seq - 1} up to #{head_seq} are missing"
        )
    return AuditVerification(ok=True, checked=checked, head_hash=expected_prev)


def _broken(checked: int, head_hash: str, seq: int, problem: str) -> AuditVerification:
    return AuditVerification(ok=False, checked=checked, head_hash=head_hash, broken_seq=seq, problem=problem)
