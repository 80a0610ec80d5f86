"""The one way a service moves a state machine: transition, save with history, audit."""

from typing import Any

from django_fsm import TransitionNotAllowed

from .audit import audit_record
from .errors import TransitionRefused, ValidationFailed


def require_reason(reason: str, *, action: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed(
            f"A reason is required to {action}.",
            code="reason_required",
            errors=[{"field": "reason", "code": "reason_required", "message": "Required."}],
        )
    return reason


def apply_transition(
    obj: Any,
    transition: str,
    *,
    actor,
    action: str,
    reason: str = "",
    changes: dict | None = None,
    data: dict | None = None,
):
    """Call ``obj.<transition>()``, set ``changes``, save (history row) and audit.

    Runs inside the caller's transaction, on a row the caller has locked. An illegal
    transition raises TransitionRefused and leaves ``obj`` as it was.
    """
    from_state = obj.status
    try:
        getattr(obj, transition)()
    except TransitionNotAllowed:
        raise TransitionRefused(
            f"Cannot {action.split('.')[-1].replace('_', ' ')} {obj}: it is {obj.get_status_display().lower()}."
        ) from None
    for field, value in (changes or {}).items():
        setattr(obj, field, value)
    obj._history_user = actor if getattr(actor, "pk", None) else None
    obj._change_reason = history_reason(action, reason)
    obj.save()
    return audit_record(
        actor=actor, action=action, target=obj, from_state=from_state, to_state=obj.status, reason=reason, data=data
    )


HISTORY_REASON_CHARS = 100  # django-simple-history's history_change_reason column


def history_reason(action: str, reason: str) -> str:
    """The history row's change reason: the action and the start of the reason (the audit row
    keeps it whole). PostgreSQL refuses a longer value where SQLite would store it."""
    text = f"{action}: {reason}" if reason else action
    return text if len(text) <= HISTORY_REASON_CHARS else text[: HISTORY_REASON_CHARS - 1] + "…"


def save_with_audit(obj: Any, *, actor, action: str, reason: str = "", data: dict | None = None):
    """Save a change that is not a transition (a claim, a new row) with history and audit;
    the audit row shows the object's unchanged state, if it has one."""
    obj._history_user = actor if getattr(actor, "pk", None) else None
    obj._change_reason = history_reason(action, reason)
    obj.save()
    state = getattr(obj, "status", "")
    return audit_record(
        actor=actor, action=action, target=obj, from_state=state, to_state=state, reason=reason, data=data
    )
