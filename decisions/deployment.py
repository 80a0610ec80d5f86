"""Environments, and deploy, roll back and revoke: what happens to a version after the board's decision.

A version runs in environments, one ``Deployment`` row per version and environment; its own
status says where it stands overall: deployed while any deployment of it is active, else
superseded or rolled back by what ended the last one, revoked once the board withdrew its
approval. Each change hosts must learn is appended to the feed in the same transaction
(decisions/feed.py); a roll back and a revocation send the rollback notice once: one
notification per recipient and the ``version.roll_back`` or ``version.revoke`` audit event that
webhooks carry (docs/lifecycle.md, "Rollback and revocation notices").

Every service locks in one order: the plugin's versions that may change (primary-key order),
then the plugin's deployments that may change, then the audit chain head.
"""

from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from packaging.version import Version

from compliance.rereviews import re_review_schedule, re_reviews_close
from governance.audit import audit_record
from governance.errors import PermissionRefused, TransitionRefused, ValidationFailed
from governance.permissions import require_perm
from governance.transitions import apply_transition, history_reason, require_reason, save_with_audit
from reviews.checks.eligibility import host_api_fits
from reviews.models import ReviewStatus, StageReview
from reviews.notices import DECIDED, authors_of, board_members, tell
from submissions.models import STANDING_APPROVALS, PluginVersion, VersionStatus
from submissions.services import lock_plugin_versions

from .attestations import attestation_of
from .feed import feed_record
from .models import Deployment, DeploymentStatus, Environment
from .retro_hunt import retro_flags_close_revoked, version_retro_hunt
from .services import deploy_check

S, D = VersionStatus, DeploymentStatus
DEPLOY, DECIDE = "submissions.deploy_pluginversion", "submissions.decide_pluginversion"
DEPLOYABLE = STANDING_APPROVALS
MAY_RUN_AGAIN = (D.ACTIVE, D.SUPERSEDED)


def environment_save(*, environment: Environment, actor: User, changed: list[str]) -> Environment:
    """A platform admin adds or changes an environment (key, name, host platform, order,
    whether a version must have run in an earlier one first, active)."""
    adding = environment._state.adding
    require_perm(
        actor,
        "decisions.add_environment" if adding else "decisions.change_environment",
        detail=f"{actor} may not configure environments.",
    )
    # not durable: the admin's add and change forms call it inside the transaction Django opens
    with transaction.atomic():
        save_with_audit(
            environment,
            actor=actor,
            action="environment.create" if adding else "environment.change",
            data={"changed": sorted(changed), "host_platform": environment.host_platform.name},
        )
    return environment


def version_deploy(*, version: PluginVersion, environment: Environment, actor: User, reason: str = "") -> Deployment:
    """Put an approved version into ``environment``; the plugin's version running there (and
    only there) is superseded.

    1. Lock; a platform admin only; the version must be approved and unrevoked (approved,
       deployed or superseded elsewhere), not running there yet, its manifest's ``host_api``
       must admit the environment's host platform and, where the environment requires it, it
       must run (or have run, without a roll back) in an environment of a lower order.
    2. Its policies are evaluated again: an enforce-mode violation (an exemption that expired
       since the approval, say) refuses the deployment with the policy's message.
    3. The deployment records who, when, why and the approval's attestation; the version is
       deployed, the previous one superseded there, and the feed learns both in that order.
    """
    reason = (reason or "").strip()
    with transaction.atomic(durable=True):
        locked = _lock(version)
        version = locked.version
        require_perm(actor, DEPLOY, detail=f"{actor} may not deploy versions.")
        environment = Environment.objects.select_related("host_platform").get(pk=environment.pk)
        _refuse_deploy(locked, environment)
        deploy_check(version=version, actor=actor)
        replaced = [d for d in locked.active_in(environment) if d.version_id != version.pk]
        deployment = Deployment(
            version=version,
            environment=environment,
            attestation=attestation_of(version=version),
            deployed_by=actor,
            deployed_at=timezone.now(),
            reason=reason,
        )
        _save(deployment, actor=actor, change="deploy", reason=reason)
        locked.deployments.append(deployment)
        was = version.status
        apply_transition(
            version,
            "reinstate" if was == S.SUPERSEDED else "deploy",  # submissions' deploy does not start from superseded
            actor=actor,
            action="version.deploy",
            reason=reason,
            data={
                **_where(deployment),
                "attestation": deployment.attestation.sha256 if deployment.attestation else None,
                "superseded": [_ref(d) for d in replaced],
            },
        )
        if was != S.DEPLOYED:
            re_review_schedule(version=version)
        feed_record(version=version, event="deployed")
        for old in replaced:
            _supersede(locked, old, by=deployment)
    return deployment


def version_roll_back(
    *, version: PluginVersion, environment: Environment, actor: User, reason: str, incident: str = ""
) -> Deployment:
    """Take a version out of one environment: the deployment it superseded there, if any,
    runs again; the version is rolled back once it runs nowhere. The rollback notice goes out
    once, with the reason and the incident reference."""
    reason = require_reason(reason, action="roll back")
    incident = (incident or "").strip()
    with transaction.atomic(durable=True):
        locked = _lock(version)
        version = locked.version
        _require_any(actor, (DEPLOY, DECIDE), detail=f"{actor} may not roll back versions.")
        current = next((d for d in locked.active_in(environment) if d.version_id == version.pk), None)
        if current is None:
            raise TransitionRefused(
                f"Cannot roll back {version} in {environment}: it does not run there.", code="not_deployed"
            )
        _end(current, "roll_back", actor=actor, reason=reason, incident=incident)
        previous = locked.previous_in(environment, excluding=version)
        runs_elsewhere = locked.runs(version)
        _follow(
            version,
            None if runs_elsewhere else "roll_back",
            actor=actor,
            action="version.roll_back",
            reason=reason,
            data={**_where(current), "incident": incident, "reinstated": _ref(previous) if previous else None},
        )
        if not runs_elsewhere:
            re_reviews_close(version=version, reason="rolled back")
        feed_record(version=version, event="rolled_back")
        if previous is not None:
            _reinstate(locked, previous, after=current, actor=actor)
        _send_notice(version, action="rolled_back", actor=actor, reason=reason, incident=incident, where=[current])
    return current


def version_revoke(*, version: PluginVersion, actor: User, reason: str) -> PluginVersion:
    """The board withdraws the approval everywhere at once: every deployment of the version is
    revoked (in each environment where it ran, the version it superseded there runs again),
    the feed lists it revoked, and the same notice as a roll back goes out."""
    reason = require_reason(reason, action="revoke")
    with transaction.atomic(durable=True):
        locked = _lock(version)
        version = locked.version
        require_perm(actor, DECIDE, detail=f"{actor} may not revoke approvals.")
        mine = [d for d in locked.deployments if d.version_id == version.pk]
        stopped = [d for d in mine if d.status == D.ACTIVE]
        previous = [(d, locked.previous_in(d.environment, excluding=version)) for d in stopped]
        apply_transition(  # first: a version that cannot be revoked is refused before anything is written
            version,
            "revoke",
            actor=actor,
            action="version.revoke",
            reason=reason,
            changes={"decided_at": timezone.now(), "decision_reason": reason},
            data={
                "environments": [d.environment.key for d in stopped],
                "deployments": [d.pk for d in mine],
                "reinstated": [{"environment": d.environment.key, **_ref(p)} for d, p in previous if p],
            },
        )
        for deployment in mine:  # superseded ones too: a revoked version never runs again
            _end(deployment, "revoke", actor=actor, reason=reason)
        re_reviews_close(version=version, reason="revoked")
        retro_flags_close_revoked(version=version, actor=actor, reason=reason)
        feed_record(version=version, event="revoked")
        for deployment, earlier in previous:
            if earlier is not None:
                _reinstate(locked, earlier, after=deployment, actor=actor)
        _send_notice(version, action="revoked", actor=actor, reason=reason, incident="", where=stopped)
    return version


# -- locking and what the locked rows say ------------------------------------------------


@dataclass
class _Locked:
    """The plugin's rows a deployment service may change, locked, as one picture: the
    deployments' statuses are updated here as the service goes, so ``runs`` sees them."""

    version: PluginVersion
    deployments: list[Deployment]  # the plugin's active and superseded deployments, everywhere

    def active_in(self, environment: Environment) -> list[Deployment]:
        return [d for d in self.deployments if d.environment_id == environment.pk and d.status == D.ACTIVE]

    def runs(self, version: PluginVersion) -> bool:
        return any(d.version_id == version.pk and d.status == D.ACTIVE for d in self.deployments)

    def previous_in(self, environment: Environment, *, excluding: PluginVersion) -> Deployment | None:
        """The deployment most recently superseded in ``environment`` whose version may run again."""
        candidates = [
            d
            for d in self.deployments
            if d.environment_id == environment.pk
            and d.status == D.SUPERSEDED
            and d.version_id != excluding.pk
            and d.version.status in (S.DEPLOYED, S.SUPERSEDED)
        ]
        return max(candidates, key=lambda d: (d.ended_at or d.deployed_at, d.pk), default=None)


def _lock(version: PluginVersion) -> _Locked:
    rows = lock_plugin_versions(version, also=Q(status__in=[S.DEPLOYED, S.SUPERSEDED]))
    deployments = list(
        Deployment.objects.select_for_update(of=("self",))
        .filter(version__plugin_id=rows[version.pk].plugin_id, status__in=MAY_RUN_AGAIN)
        .select_related("environment__host_platform", "version")  # versions not locked above: no query each
        .order_by("pk")
    )
    for deployment in deployments:  # the locked instance, so a status it gets is seen everywhere
        if deployment.version_id in rows:
            deployment.version = rows[deployment.version_id]
    return _Locked(version=rows[version.pk], deployments=deployments)


def _require_any(actor: User, perms: tuple[str, ...], *, detail: str) -> None:
    if actor is None or not actor.is_active or not any(actor.has_perm(perm) for perm in perms):
        raise PermissionRefused(detail)


def _refuse_deploy(locked: _Locked, environment: Environment) -> None:
    version = locked.version
    if version.status not in DEPLOYABLE:
        raise TransitionRefused(f"Cannot deploy {version}: it is {version.get_status_display().lower()}.")
    if not environment.active:
        raise ValidationFailed(f"{environment} is not active.", code="environment_inactive")
    running = locked.active_in(environment)
    if any(d.version_id == version.pk for d in running):
        raise TransitionRefused(f"{version} already runs in {environment}.", code="already_deployed")
    newer = [d.version for d in running if Version(d.version.version) > Version(version.version)]
    if newer:  # going back is a rollback: with a reason, an incident and its notice
        raise TransitionRefused(
            f"{newer[0]} runs in {environment} and is newer than {version}: roll it back instead.",
            code="older_than_running",
        )
    wanted, host = version.manifest["plugin"]["host_api"], environment.host_platform
    if not host_api_fits(wanted=wanted, api_version=host.api_version):
        raise TransitionRefused(
            f"{version} cannot run in {environment}: host_api {wanted!r} excludes {host.name}'s API "
            f"{host.api_version}.",
            code="host_api_incompatible",
        )
    earlier = version.deployments.filter(
        environment__host_platform_id=environment.host_platform_id,  # staging of another platform proves nothing here
        environment__order__lt=environment.order,
        status__in=MAY_RUN_AGAIN,
    )
    if environment.requires_previous and not earlier.exists():
        raise TransitionRefused(
            f"{version} must run in an earlier environment of {environment.host_platform.name} before {environment} "
            "(and not be rolled back there).",
            code="previous_environment_required",
        )


# -- the steps ---------------------------------------------------------------------------


def _supersede(locked: _Locked, old: Deployment, *, by: Deployment) -> None:
    """System: a newer version was deployed where ``old`` ran."""
    reason = f"{by.version} was deployed to {by.environment}."
    _end(old, "supersede", actor=None, reason=reason)
    previous = old.version
    runs_elsewhere = locked.runs(previous)
    _follow(
        previous,
        None if runs_elsewhere else "supersede",
        actor=None,
        action="version.supersede",
        reason=reason,
        data={**_where(old), "by": _ref(by)},
    )
    if not runs_elsewhere:
        re_reviews_close(version=previous, reason=f"superseded by {by.version}")
    feed_record(version=previous, event="superseded")


def _reinstate(locked: _Locked, earlier: Deployment, *, after: Deployment, actor: User) -> None:
    """``after`` stopped in its environment: the deployment it superseded there runs again."""
    reason = f"{after.version} was {after.get_status_display().lower()} in {after.environment}."
    earlier.reinstate()
    earlier.ended_by, earlier.ended_at, earlier.end_reason = None, None, ""
    _save(earlier, actor=actor, change="reinstate", reason=reason)
    version = earlier.version
    was = version.status
    _follow(
        version,
        "reinstate" if was == S.SUPERSEDED else None,
        actor=actor,
        action="version.reinstate",
        reason=reason,
        data={**_where(earlier), "after": _ref(after)},
    )
    if was == S.SUPERSEDED:
        re_review_schedule(version=version)
    feed_record(version=version, event="reinstated")
    version_retro_hunt(version=version, trigger=f"reinstated: {reason}")  # judged as of now, not as approved


def _end(deployment: Deployment, transition: str, *, actor: User | None, reason: str, incident: str = "") -> None:
    getattr(deployment, transition)()
    deployment.ended_by, deployment.ended_at, deployment.end_reason = actor, timezone.now(), reason
    deployment.incident = incident
    _save(deployment, actor=actor, change=transition, reason=reason)


def _save(deployment: Deployment, *, actor: User | None, change: str, reason: str) -> None:
    """A history row with who and why; the audit row is the version's (``_follow``)."""
    deployment._history_user = actor  # type: ignore[attr-defined]  # simple_history reads it
    deployment._change_reason = history_reason(f"deployment.{change}", reason)  # type: ignore[attr-defined]
    deployment.save()


def _follow(
    version: PluginVersion, transition: str | None, *, actor: User | None, action: str, reason: str, data: dict
) -> None:
    """The version's audit row for a change of one of its deployments; with ``transition``
    when the change also moves where the version stands overall."""
    if transition is not None:
        apply_transition(version, transition, actor=actor, action=action, reason=reason, data=data)
    else:
        audit_record(
            actor=actor,
            action=action,
            target=version,
            from_state=version.status,
            to_state=version.status,
            reason=reason,
            data=data,
        )


def _where(deployment: Deployment) -> dict[str, Any]:
    return {"environment": deployment.environment.key, "deployment": deployment.pk}


def _ref(deployment: Deployment) -> dict[str, Any]:
    return {"version": deployment.version_id, "number": deployment.version.version, "deployment": deployment.pk}


# -- the rollback notice -----------------------------------------------------------------


def approvers_of(version: PluginVersion) -> list[User]:
    """The reviewers who approved it: whoever decided one of its passed stage reviews (any round)."""
    passed = StageReview.objects.filter(version=version, status=ReviewStatus.PASSED, decided_by__isnull=False)
    return list(get_user_model().objects.filter(pk__in=passed.values("decided_by"), is_active=True))


def _send_notice(
    version: PluginVersion, *, action: str, actor: User, reason: str, incident: str, where: list[Deployment]
) -> None:
    """One notification per recipient (the authors, the approving reviewers, the board; never
    the actor), in the transaction of the change."""
    places = ", ".join(str(d.environment) for d in where) or "no environment (it was not running)"
    said = action.replace("_", " ")
    lines = [f"{version} was {said} by {actor} in {places}.", "", reason]
    if incident:
        lines += ["", f"Incident: {incident}"]
    tell(
        [*authors_of(version), *approvers_of(version), *board_members()],
        actor=actor,
        event=DECIDED[action],
        subject=f"{version} was {said}" + (f" in {places}" if action == "rolled_back" else ""),
        body="\n".join(lines),
        version=version,
    )
