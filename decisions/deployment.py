"""Deploy, roll back and revoke: what happens to a version after the board's decision."""

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from compliance.rereviews import re_review_schedule, re_reviews_close
from governance.permissions import require_perm
from governance.transitions import apply_transition, require_reason
from reviews.notices import notify_decided
from submissions.models import PluginVersion, VersionStatus
from submissions.services import lock_plugin_versions, lock_with_perm

from .services import deploy_check


def version_deploy(*, version: PluginVersion, actor: User, reason: str = "") -> PluginVersion:
    """Mark an approved version as running; the plugin's previously deployed version is superseded.
    Its policies are evaluated again first: an enforce-mode violation (an exemption that expired
    since the approval, say) refuses the deployment with the policy's message."""
    with transaction.atomic(durable=True):
        rows = lock_plugin_versions(version, also=Q(status=VersionStatus.DEPLOYED))
        version = rows.pop(version.pk)
        require_perm(actor, "submissions.deploy_pluginversion", detail=f"{actor} may not deploy versions.")
        if version.status == VersionStatus.APPROVED:  # else the transition refuses it below
            deploy_check(version=version, actor=actor)
        apply_transition(version, "deploy", actor=actor, action="version.deploy", reason=reason)
        re_review_schedule(version=version)
        for previous in rows.values():
            apply_transition(
                previous, "supersede", actor=None, action="version.supersede", reason=f"{version} was deployed."
            )
            re_reviews_close(version=previous, reason=f"superseded by {version}")
    return version


def version_roll_back(*, version: PluginVersion, actor: User, reason: str) -> PluginVersion:
    """Take a deployed version out; the version it superseded most recently runs again."""
    reason = require_reason(reason, action="roll back")
    with transaction.atomic(durable=True):
        rows = lock_plugin_versions(version, also=Q(status=VersionStatus.SUPERSEDED))
        version = rows.pop(version.pk)
        require_perm(actor, "submissions.deploy_pluginversion", detail=f"{actor} may not roll back versions.")
        apply_transition(version, "roll_back", actor=actor, action="version.roll_back", reason=reason)
        re_reviews_close(version=version, reason="rolled back")
        if rows:
            previous = rows[max(rows)]
            apply_transition(
                previous, "reinstate", actor=actor, action="version.reinstate", reason=f"{version} was rolled back."
            )
            re_review_schedule(version=previous)
        notify_decided(version=version, action="rolled_back", reason=reason, actor=actor)
    return version


def version_revoke(*, version: PluginVersion, actor: User, reason: str) -> PluginVersion:
    reason = require_reason(reason, action="revoke")
    with transaction.atomic(durable=True):
        version = lock_with_perm(version, actor, "submissions.decide_pluginversion", "revoke approvals")
        apply_transition(
            version,
            "revoke",
            actor=actor,
            action="version.revoke",
            reason=reason,
            changes={"decided_at": timezone.now(), "decision_reason": reason},
        )
        re_reviews_close(version=version, reason="revoked")
        notify_decided(version=version, action="revoked", reason=reason, actor=actor)
    return version
