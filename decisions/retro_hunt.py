"""Retro-hunt: versions hosts may run, evaluated again when what judges them changes.

The triggers: the policies are synced with a change (every standing version), advisories
are imported (the standing versions that require an affected package: their dependency
check runs again and, when it finishes, the version is evaluated), an exemption ends, and a
roll back reinstates an earlier version. A blocking violation then opens a flag with a due
date (the policy's severity sets how soon), told to the version's owners and the security
group; a policy with ``retro_hunt: revoke`` also proposes revocation to the board. A flag
clears itself when a later evaluation no longer finds the violation, is resolved by a
security reviewer with a reason, or closes when the board revokes the version. An overdue
flag is escalated once. docs/lifecycle.md, "Retro-hunt", has the whole story.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from governance import roles
from governance.audit import audit_record
from governance.permissions import require_perm
from governance.transitions import apply_transition, require_reason
from reviews.models import CheckRun
from reviews.notices import authors_of, board_members, tell
from submissions.models import STANDING_APPROVALS, PluginVersion

from .models import FlagStatus, Policy, PolicyEvaluation, RetroHuntAction, RetroHuntFlag
from .rubric import digest_of
from .services import assess_version, version_assess

TRIGGER = "retro_hunt"
RESOLVE = "decisions.resolve_retrohuntflag"
# How many days the owners have to resolve a violation found after approval, by the policy's severity.
DUE_DAYS = {"critical": 2, "high": 7, "medium": 30, "low": 90}


@dataclass
class HuntReport:
    evaluated: int = 0
    changed: int = 0  # versions whose policy results differ from their latest evaluation
    opened: list[RetroHuntFlag] = field(default_factory=list)
    cleared: list[RetroHuntFlag] = field(default_factory=list)

    def add(self, other: "HuntReport") -> None:
        self.evaluated += other.evaluated
        self.changed += other.changed
        self.opened += other.opened
        self.cleared += other.cleared


def retro_hunt(*, trigger: str, version_ids: Iterable[int] | None = None) -> HuntReport:
    """System (a task): evaluate each standing version (of ``version_ids`` when given) again,
    each in its own transaction, so one version's flags never wait for the others."""
    report = HuntReport()
    versions = PluginVersion.objects.filter(status__in=STANDING_APPROVALS)  # what hosts may run
    if version_ids is not None:
        versions = versions.filter(pk__in=list(version_ids))
    for version_id in versions.order_by("pk").values_list("pk", flat=True):
        with transaction.atomic(durable=True):
            version = PluginVersion.objects.select_for_update(of=("self",)).select_related("plugin").get(pk=version_id)
            report.add(version_retro_hunt(version=version, trigger=trigger))
    return report


def on_check_finished(*, run: CheckRun) -> None:
    """A check ran again on a standing version (the dependency match after new advisories,
    a report posted after approval): hunt it again, after the run's own transaction."""
    if PluginVersion.objects.filter(pk=run.version_id, status__in=STANDING_APPROVALS).exists():
        retro_hunt(trigger=f"{run.check_key} ran again after approval (run {run.pk})", version_ids=[run.version_id])


def version_retro_hunt(*, version: PluginVersion, trigger: str) -> HuntReport:
    """In the caller's transaction, with ``version`` locked: evaluate it again. Only when the
    outcome differs from its latest evaluation (a policy's outcome, or the facts, changed) or
    its flags do not match it, the evaluation is stored, a flag opened for each blocking
    violation without one and the flags of the violations that are gone cleared. A policy
    sync that changes nothing for a version writes nothing for it."""
    report = HuntReport(evaluated=1)
    if version.status not in STANDING_APPROVALS:
        return report
    assessment, _rubric = assess_version(version=version)
    facts = digest_of(assessment.facts)
    blocking = {row["key"]: row for row in assessment.results if row["blocks"]}
    resolved = _resolved_on_these_facts(version, facts)
    wanted = {key for key, row in blocking.items() if (key, row["version"]) not in resolved}
    flags = version.retro_flags.select_for_update().filter(status=FlagStatus.OPEN)
    open_flags = {flag.policy_key: flag for flag in flags}
    if _outcome(assessment.results, facts) == _latest_outcome(version) and set(open_flags) == wanted:
        return report  # nothing new: no rows written, nobody told
    report.changed = 1
    stored = version_assess(version=version, trigger=TRIGGER)
    for key, flag in open_flags.items():
        if key not in blocking:
            report.cleared.append(_clear(flag, stored.evaluation, trigger))
    for key in sorted(wanted - set(open_flags)):
        report.opened.append(_open(version, blocking[key], stored.evaluation, trigger, facts))
    if report.opened:
        _tell_opened(version, report.opened, trigger)
    return report


def _outcome(results: list[dict], facts_digest: str) -> str:
    """What a version is judged to be, whatever the policies' version numbers: each policy's
    outcome, and the facts."""
    return digest_of([[[r["key"], r["outcome"], r["blocks"]] for r in results], facts_digest])


def _latest_outcome(version: PluginVersion) -> str | None:
    latest = version.policy_evaluations.select_related("rating").order_by("-pk").first()
    if latest is None or latest.rating is None:
        return None
    return _outcome(latest.results, digest_of(latest.rating.facts))


def _resolved_on_these_facts(version: PluginVersion, facts: str) -> set[tuple[str, int]]:
    """(policy key, version) of the flags a reviewer resolved while the version was judged on
    these very facts (one query): those are not raised again. New facts (a new advisory) raise
    them again."""
    resolved = version.retro_flags.filter(status=FlagStatus.RESOLVED, facts_digest=facts)
    return set(resolved.values_list("policy_key", "policy_version"))


def _open(version: PluginVersion, row: dict, evaluation: PolicyEvaluation, trigger: str, facts: str) -> RetroHuntFlag:
    action = Policy.objects.filter(key=row["key"], version=row["version"]).values_list("retro_hunt", flat=True).first()
    flag = RetroHuntFlag.objects.create(
        version=version,
        policy_key=row["key"],
        policy_version=row["version"],
        severity=row["severity"],
        message=row["error"] or row["message"],
        trigger=trigger[:300],
        evaluation=evaluation,
        facts_digest=facts,
        proposes_revocation=action == RetroHuntAction.REVOKE,
        due_on=due_on(row["severity"]),
    )
    audit_record(
        actor=None,
        action="retro_hunt.flag",
        target=flag,
        reason=trigger,
        data={
            "version": version.pk,
            "policy": f"{flag.policy_key} v{flag.policy_version}",
            "due_on": flag.due_on.isoformat(),
            "proposes_revocation": flag.proposes_revocation,
            "evaluation": evaluation.pk,
        },
    )
    return flag


def due_on(severity: str, today: date | None = None) -> date:
    return (today or timezone.localdate()) + timedelta(days=DUE_DAYS.get(severity, DUE_DAYS["high"]))


def _clear(flag: RetroHuntFlag, evaluation: PolicyEvaluation, trigger: str) -> RetroHuntFlag:
    return apply_transition(
        flag,
        "clear",
        actor=None,
        action="retro_hunt.clear",
        reason=f"A later evaluation ({trigger}) no longer finds it.",
        changes={
            "closed_at": timezone.now(),
            "closing_reason": f"No longer found ({trigger}).",
            "evaluation": evaluation,
        },
        data={"version": flag.version_id, "evaluation": evaluation.pk},
    )


def retro_flag_resolve(*, flag: RetroHuntFlag, actor: User, reason: str) -> RetroHuntFlag:
    """A security reviewer closes a flag and says how it was handled (fixed in a newer
    version, a compensating control, an exemption asked for). The same violation on the same
    facts is not raised again; new facts raise it again."""
    reason = require_reason(reason, action="resolve")
    with transaction.atomic(durable=True):
        flag = RetroHuntFlag.objects.select_for_update().select_related("version__plugin").get(pk=flag.pk)
        require_perm(actor, RESOLVE, detail=f"{actor} may not resolve retro-hunt flags.")
        return apply_transition(
            flag,
            "resolve",
            actor=actor,
            action="retro_hunt.resolve",
            reason=reason,
            changes={"closed_at": timezone.now(), "closed_by": actor, "closing_reason": reason},
            data={"version": flag.version_id},
        )


def retro_flags_close_revoked(*, version: PluginVersion, actor: User, reason: str) -> int:
    """In the revocation's transaction: the version's open flags are closed by it."""
    flags = list(version.retro_flags.select_for_update().filter(status=FlagStatus.OPEN))
    for flag in flags:
        apply_transition(
            flag,
            "revoke",
            actor=actor,
            action="retro_hunt.revoked",
            reason=reason,
            changes={"closed_at": timezone.now(), "closed_by": actor, "closing_reason": f"Revoked: {reason}"},
            data={"version": version.pk},
        )
    return len(flags)


def retro_flags_escalate(*, today: date | None = None) -> int:
    """System (daily): an open flag past its due date is told once to the security group, the
    board and the platform admins, besides its owners."""
    today = today or timezone.localdate()
    escalated = 0
    for pk in RetroHuntFlag.objects.filter(
        status=FlagStatus.OPEN, due_on__lt=today, escalated_at__isnull=True
    ).values_list("pk", flat=True):
        with transaction.atomic(durable=True):
            flag = RetroHuntFlag.objects.select_for_update().select_related("version__plugin").get(pk=pk)
            if flag.status != FlagStatus.OPEN or flag.escalated_at:
                continue
            flag.escalated_at = timezone.now()
            flag.save(update_fields=["escalated_at"])
            audit_record(
                actor=None, action="retro_hunt.escalate", target=flag, data={"due_on": flag.due_on.isoformat()}
            )
            people = [
                *authors_of(flag.version),
                *_group(roles.SECURITY_REVIEWERS),
                *board_members(),
                *_group(roles.PLATFORM_ADMINS),
            ]
            tell(
                people,
                actor=None,
                event="retro_hunt.overdue",
                subject=f"Overdue: {flag} was due on {flag.due_on:%Y-%m-%d}",
                body=f"{flag.message}\n\nFound after approval ({flag.trigger}). Resolve it, or revoke the version.",
                version=flag.version,
            )
            escalated += 1
    return escalated


def _tell_opened(version: PluginVersion, flags: list[RetroHuntFlag], trigger: str) -> None:
    lines = [
        f"- {f.policy_key} v{f.policy_version} ({f.severity}), due {f.due_on:%Y-%m-%d}: {f.message}" for f in flags
    ]
    body = f"Found after approval ({trigger}):\n\n" + "\n".join(lines)
    tell(
        [*authors_of(version), *_group(roles.SECURITY_REVIEWERS)],
        actor=None,
        event="retro_hunt.flagged",
        subject=f"{version}, already approved, now violates {', '.join(f.policy_key for f in flags)}",
        body=body,
        version=version,
    )
    proposed = [f for f in flags if f.proposes_revocation]
    if proposed:
        tell(
            board_members(),
            actor=None,
            event="retro_hunt.revocation_proposed",
            subject=f"Revocation of {version} proposed",
            body=body + "\n\nThe policy asks the board to consider revoking it: Revoke on its page.",
            version=version,
        )


def _group(name: str) -> list[User]:
    return list(get_user_model().objects.filter(groups__name=name, is_active=True))
