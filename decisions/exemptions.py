"""Exemptions: requested by the plugin's people or its reviewers, approved by the approval
board (never by the requester), suppressing one policy or one finding until they expire.

A scheduled task (governance.tasks.expire_exemptions) warns the owners ahead of expiry and
expires what is due; an exemption past its expiry suppresses nothing even before that task
runs, because every reader filters on ``expires_at``.
"""

from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import QuerySet
from django.urls import reverse
from django.utils import timezone

from governance import roles
from governance.errors import PermissionRefused, TransitionRefused, ValidationFailed
from governance.notifications import notify
from governance.permissions import is_org_member
from governance.transitions import apply_transition, require_reason, save_with_audit
from reviews.models import Finding
from submissions.models import Plugin, PluginVersion, VersionStatus

from .models import Exemption, ExemptionScope, ExemptionStatus, Policy
from .retro_hunt import retro_hunt
from .services import version_assess


def exemption_request(
    *,
    actor: User,
    plugin: Plugin,
    scope: str,
    justification: str,
    expires_at: datetime,
    version: PluginVersion | None = None,
    policy_key: str = "",
    finding: Finding | None = None,
    compensating_controls: list[str] | str = "",
) -> Exemption:
    """Ask for an exemption. The plugin's organisation and its reviewers may ask."""
    if not (is_org_member(actor, plugin.organisation) or actor.has_perm("decisions.add_exemption")):
        raise PermissionRefused(f"{actor} may not ask for exemptions for {plugin}.")
    justification = require_reason(justification, action="ask for an exemption")
    exemption = Exemption(
        plugin=plugin,
        scope=scope,
        version=version if scope == ExemptionScope.VERSION else None,
        justification=justification,
        compensating_controls=_controls(compensating_controls),
        requested_by=actor,
        expires_at=expires_at,
    )
    _check_target(exemption, policy_key=policy_key, finding=finding)
    # not durable: the admin's add/change form calls it inside the transaction Django opens
    with transaction.atomic():
        save_with_audit(exemption, actor=actor, action="exemption.request", data=_describe(exemption))
        notify(
            recipients=list(_board()),
            event="exemption.requested",
            subject=f"{exemption}: approval wanted",
            body=f"{actor} asks until {exemption.expires_at:%Y-%m-%d}: {justification}",
            url=reverse("admin:decisions_exemption_change", args=[exemption.pk]),
        )
    return exemption


def _controls(value: list[str] | str) -> list[str]:
    lines = value.splitlines() if isinstance(value, str) else list(value)
    return [str(line).strip() for line in lines if str(line).strip()]


def _check_target(exemption: Exemption, *, policy_key: str, finding: Finding | None) -> None:
    errors = []
    if exemption.scope not in ExemptionScope.values:
        errors.append({"field": "scope", "code": "invalid", "message": f"One of {', '.join(ExemptionScope.values)}."})
    if exemption.scope == ExemptionScope.VERSION and (
        exemption.version is None or exemption.version.plugin_id != exemption.plugin.pk
    ):
        errors.append({"field": "version", "code": "invalid", "message": "A version of this plugin."})
    if bool(policy_key) == (finding is not None):
        errors.append({"field": "policy_key", "code": "invalid", "message": "Name one policy or one finding."})
    elif policy_key and not Policy.objects.filter(key=policy_key).exists():
        errors.append({"field": "policy_key", "code": "unknown_policy", "message": f"No policy {policy_key!r}."})
    elif finding is not None and finding.version.plugin_id != exemption.plugin.pk:
        errors.append({"field": "finding", "code": "invalid", "message": "A finding of this plugin."})
    now = timezone.now()
    longest = timedelta(days=settings.WARDEN_EXEMPTION_MAX_DAYS)
    if not now < exemption.expires_at <= now + longest:
        errors.append(
            {
                "field": "expires_at",
                "code": "invalid",
                "message": f"In the future, at most {settings.WARDEN_EXEMPTION_MAX_DAYS} days away.",
            }
        )
    if errors:
        raise ValidationFailed("The exemption request is invalid.", code="invalid_exemption", errors=errors)
    exemption.policy_key = policy_key
    if finding is not None:
        exemption.finding_fingerprint, exemption.finding_title = finding.fingerprint, finding.title[:300]


def _describe(exemption: Exemption) -> dict:
    return {
        "scope": exemption.scope,
        "plugin": str(exemption.plugin),
        "version": exemption.version_id,
        "policy": exemption.policy_key,
        "finding": exemption.finding_fingerprint,
        "expires_at": exemption.expires_at.isoformat(),
        "compensating_controls": exemption.compensating_controls,
    }


def _locked(exemption: Exemption) -> Exemption:
    return Exemption.objects.select_for_update(of=("self",)).select_related("plugin__organisation").get(pk=exemption.pk)


def _require_board(actor: User | None, exemption: Exemption, *, verb: str) -> None:
    if actor is None or not actor.is_active or not actor.groups.filter(name=roles.APPROVAL_BOARD).exists():
        raise PermissionRefused(f"Only the approval board may {verb} exemptions; {actor} is not on it.")
    if actor.pk == exemption.requested_by_id:
        raise PermissionRefused(f"{actor} asked for this exemption and may not {verb} it; another member must.")
    if is_org_member(actor, exemption.plugin.organisation):
        raise PermissionRefused(f"{actor} belongs to the organisation of {exemption.plugin}; someone else must.")


def exemption_approve(*, exemption: Exemption, actor: User, reason: str = "") -> Exemption:
    """The board grants it; the versions it covers that await a decision are rated again at
    once, so the board decides on the rating the exemption makes, not the one before it."""
    with transaction.atomic(durable=True):
        exemption = _board_decides(exemption, "approve", actor, reason, approved_by=actor)
    _reassess_waiting(exemption, trigger="exemption_approved")
    return exemption


def exemption_reject(*, exemption: Exemption, actor: User, reason: str) -> Exemption:
    reason = require_reason(reason, action="reject an exemption")
    with transaction.atomic(durable=True):
        return _board_decides(exemption, "reject", actor, reason)


def exemption_revoke(*, exemption: Exemption, actor: User, reason: str) -> Exemption:
    """The board withdraws an exemption early; what it suppressed counts again at once."""
    reason = require_reason(reason, action="revoke an exemption")
    with transaction.atomic(durable=True):
        exemption = _board_decides(exemption, "revoke", actor, reason)
        _tell_owners(exemption, "exemption.expired", f"{exemption} was revoked", reason)
    _reassess_waiting(exemption, trigger="exemption_revoked")
    return exemption


def _board_decides(exemption: Exemption, transition: str, actor: User, reason: str, **changes: object) -> Exemption:
    """Inside the caller's transaction: lock, check the board member, transition, tell the requester."""
    exemption = _locked(exemption)
    _require_board(actor, exemption, verb=transition)
    if transition == "approve" and exemption.expires_at <= timezone.now():
        raise TransitionRefused(f"{exemption} expired before it was approved; ask again.")
    apply_transition(
        exemption,
        transition,
        actor=actor,
        action=f"exemption.{transition}",
        reason=reason,
        changes={"decided_at": timezone.now(), "decision_reason": reason, **changes},
    )
    if transition != "revoke":
        notify(
            recipients=[exemption.requested_by],
            event="exemption.decided",
            subject=f"{exemption}: {exemption.get_status_display().lower()}",
            body=reason,
            url=reverse("admin:decisions_exemption_change", args=[exemption.pk]),
        )
    return exemption


def exemptions_expire(*, now: datetime | None = None) -> int:
    """System: expire what is due (requested or approved); the owners are told that what it
    suppressed counts again."""
    now = now or timezone.now()
    due = Exemption.objects.filter(
        status__in=[ExemptionStatus.REQUESTED, ExemptionStatus.APPROVED], expires_at__lte=now
    ).values_list("pk", flat=True)
    expired = 0
    for pk in list(due):
        with transaction.atomic(durable=True):
            exemption = _locked(Exemption(pk=pk))
            if exemption.status not in (ExemptionStatus.REQUESTED, ExemptionStatus.APPROVED):
                continue  # decided meanwhile
            was_active = exemption.status == ExemptionStatus.APPROVED
            apply_transition(exemption, "expire", actor=None, action="exemption.expire", reason="Expiry reached.")
            if was_active:
                _tell_owners(
                    exemption,
                    "exemption.expired",
                    f"{exemption} has expired",
                    "What it suppressed counts again: the policy or finding is back in ratings and the gate.",
                )
        if was_active:
            _reassess_waiting(exemption, trigger="exemption_expired")
        expired += 1
    return expired


def _reassess_waiting(exemption: Exemption, *, trigger: str) -> None:
    """The board is looking at versions awaiting a decision: rate them again now, so what the
    exemption suppresses (or no longer suppresses) shows at once rather than at the next
    evaluation; the plugin's standing versions are hunted again (an ended exemption may
    leave a violation where it runs, a new one clears a flag). Each version in its own
    transaction, after the exemption's has committed."""
    versions = PluginVersion.objects.filter(plugin_id=exemption.plugin_id)
    if exemption.version_id:
        versions = versions.filter(pk=exemption.version_id)
    waiting = versions.filter(status=VersionStatus.AWAITING_DECISION)
    retro_hunt(
        trigger=f"{exemption} {trigger.removeprefix('exemption_')}", version_ids=versions.values_list("pk", flat=True)
    )
    for version_id in waiting.values_list("pk", flat=True):
        with transaction.atomic():
            version = PluginVersion.objects.select_for_update().get(pk=version_id)
            if version.status == VersionStatus.AWAITING_DECISION:
                version_assess(version=version, trigger=trigger)


def exemptions_warn(*, now: datetime | None = None) -> int:
    """System: tell the owners once when an approved exemption is about to expire."""
    now = now or timezone.now()
    horizon = now + timedelta(days=settings.WARDEN_EXEMPTION_WARN_DAYS)
    due = Exemption.objects.filter(
        status=ExemptionStatus.APPROVED, warned_at__isnull=True, expires_at__gt=now, expires_at__lte=horizon
    ).values_list("pk", flat=True)
    warned = 0
    for pk in list(due):
        with transaction.atomic(durable=True):
            exemption = _locked(Exemption(pk=pk))
            if exemption.status != ExemptionStatus.APPROVED or exemption.warned_at:
                continue
            exemption.warned_at = now
            save_with_audit(exemption, actor=None, action="exemption.warn")
            _tell_owners(
                exemption,
                "exemption.expiring",
                f"{exemption} expires on {exemption.expires_at:%Y-%m-%d}",
                "Fix what it covers or ask for a new exemption before then.",
            )
            warned += 1
    return warned


def _tell_owners(exemption: Exemption, event: str, subject: str, body: str) -> None:
    """The owners: who asked, who approved, and the plugin's organisation."""
    members = get_user_model().objects.filter(groups__pk=exemption.plugin.organisation.group_id)
    people = [exemption.requested_by, exemption.approved_by, *members]
    url = reverse("admin:decisions_exemption_change", args=[exemption.pk])
    notify(recipients=people, event=event, subject=subject, body=body, url=url)


def _board() -> QuerySet[User]:
    return get_user_model().objects.filter(groups__name=roles.APPROVAL_BOARD, is_active=True)
