"""Writes on the review pipeline: starting a round, reviewers' decisions, the board's.

Each service runs in one transaction: lock the version, then the stage review, check
permission, transition, save with history, audit; anything slow happens after commit.
"""

from collections.abc import Sequence
from datetime import date

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from governance.audit import audit_record
from governance.errors import PermissionRefused, TransitionRefused, ValidationFailed
from governance.models import ReviewerProfile, StageKind
from governance.notifications import notify
from governance.permissions import is_org_member, refuse_own_submission, require_perm
from governance.transitions import apply_transition, require_reason, save_with_audit
from submissions.models import PluginVersion

from . import pipeline
from .assignment import candidates, is_qualified
from .checks.queue import enqueue_after_commit
from .collaboration import feedback_request
from .escalation import escalation_record, unacknowledged
from .models import (
    RUN_ACTIVE,
    CannedResponse,
    CheckRun,
    Finding,
    FindingTriage,
    ReviewStatus,
    RunStatus,
    StageReview,
    Triage,
)
from .notices import notify_changes_requested, notify_decided
from .responses import responses_chosen, responses_record


def review_start(*, version: PluginVersion) -> PluginVersion:
    """System: a submitted version whose intake succeeded enters a new review round."""
    with transaction.atomic(durable=True):
        version = PluginVersion.objects.select_for_update().get(pk=version.pk)
        apply_transition(version, "start", actor=None, action="version.start")
        pipeline.open_round(version=version)
        pipeline.advance(version=version)
    return version


def stage_claim(*, review: StageReview, actor: User) -> StageReview:
    with transaction.atomic(durable=True):
        _version, review = _lock(review)
        _check_reviewer(review, actor)
        if not review.is_open:
            raise TransitionRefused(f"Cannot claim {review}: it is {review.get_status_display().lower()}.")
        if review.assignee_id == actor.pk:
            return review
        if review.assignee_id:
            raise TransitionRefused(f"{review} is already claimed by {review.assignee}.")
        review.assignee = actor
        save_with_audit(review, actor=actor, action="stage.claim")
    return review


def stage_release(*, review: StageReview, actor: User) -> StageReview:
    """The assignee gives a review back to its group's queue."""
    with transaction.atomic(durable=True):
        _version, review = _lock(review)
        if not review.is_open or review.assignee_id != actor.pk:
            raise TransitionRefused(f"Only the assignee of an open review can release it; {review} is not yours.")
        review.assignee = None
        save_with_audit(review, actor=actor, action="stage.release")
    return review


def stage_assign(*, review: StageReview, actor: User, to: User) -> StageReview:
    """Hand over (by the assignee) or reassign (by the assignee's lead or a platform admin)
    to another reviewer who could have been assigned in the first place."""
    with transaction.atomic(durable=True):
        _version, review = _lock(review)
        if not review.is_open:
            raise TransitionRefused(f"{review} is {review.get_status_display().lower()}; it cannot be reassigned.")
        _refuse_decision_stage(review)
        if to.pk == review.assignee_id:
            return review
        lead = (
            actor.is_active
            and review.assignee_id
            and ReviewerProfile.objects.filter(user_id=review.assignee_id, lead=actor).exists()
        )
        if not (review.assignee_id == actor.pk or lead or actor.has_perm("reviews.waive_stagereview")):
            raise PermissionRefused(
                f"{actor} may not reassign {review}: only its assignee, their lead or a platform admin."
            )
        if to not in candidates(review):
            raise ValidationFailed(
                f"{to} cannot review {review} (group, qualification or separation of duties).", code="not_a_candidate"
            )
        review.assignee, review.unassigned_reason = to, ""
        save_with_audit(review, actor=actor, action="stage.assign", data={"assignee": to.get_username()})
        notify(
            recipients=[to],
            event="stage.assigned",
            subject=f"{review} is yours now",
            body=f"{actor} assigned it to you.",
            url=reverse("admin:reviews_stagereview_change", args=[review.pk]),
        )
    return review


def stage_pass(*, review: StageReview, actor: User, reason: str = "") -> StageReview:
    with transaction.atomic():
        version, review = _decide(review, actor, "pass_review", "stage.pass", reason)
        pipeline.advance(version=version)
    return review


def stage_fail(
    *, review: StageReview, actor: User, reason: str, responses: Sequence[CannedResponse] = ()
) -> StageReview:
    """``responses``: the canned responses the reviewer started ``reason`` from; the review
    keeps a copy of each (reviews/responses.py) and the audit event lists their keys."""
    reason = require_reason(reason, action="fail a stage")
    with transaction.atomic(durable=True):
        chosen = responses_chosen(review=review, responses=responses)
        used = {"responses": [r.key for r in chosen]} if chosen else None
        version, review = _decide(review, actor, "fail", "stage.fail", reason, data=used)
        responses_record(review=review, responses=chosen)
        if review.blocking:
            pipeline.close_round(version=version, reason=f"{review.stage.name} failed.")
            apply_transition(
                version,
                "reject",
                actor=None,
                action="version.reject",
                reason=f"Blocking stage {review.stage.name} failed: {reason}",
                changes={"decided_at": timezone.now(), "decision_reason": reason},
            )
            feedback_request(version=version)
            notify_decided(version=version, action="rejected", reason=f"{review.stage} failed: {reason}", actor=actor)
        else:
            pipeline.advance(version=version)
    return review


def stage_request_changes(
    *, review: StageReview, actor: User, reason: str, responses: Sequence[CannedResponse] = ()
) -> StageReview:
    """``responses`` as for ``stage_fail``."""
    reason = require_reason(reason, action="request changes")
    with transaction.atomic(durable=True):
        chosen = responses_chosen(review=review, responses=responses)
        used = {"responses": [r.key for r in chosen]} if chosen else None
        version, review = _decide(review, actor, "request_changes", "stage.request_changes", reason, data=used)
        responses_record(review=review, responses=chosen)
        pipeline.close_round(version=version, reason=f"{review.stage.name} requested changes.")
        apply_transition(version, "request_changes", actor=actor, action="version.request_changes", reason=reason)
        notify_changes_requested(version=version, reason=reason, actor=actor)
    return review


def stage_waive(*, review: StageReview, actor: User, reason: str) -> StageReview:
    """A platform admin lets the pipeline go on without this stage's verdict."""
    reason = require_reason(reason, action="waive a stage")
    with transaction.atomic(durable=True):
        version, review = _lock(review)
        require_perm(actor, "reviews.waive_stagereview", detail=f"{actor} may not waive stages.")
        refuse_own_submission(actor, version)
        _refuse_decision_stage(review)
        refuse_second_signoff(version, actor, exclude=[review])
        escalation_record(review=review, version=version)  # a waiver acknowledges nothing: the policy still asks
        apply_transition(
            review, "waive", actor=actor, action="stage.waive", reason=reason, changes=decided_fields(actor, reason)
        )
        pipeline.advance(version=version)
    return review


def stage_auto_pass(*, review: StageReview) -> StageReview | None:
    """System: an auto-pass stage passes once every check it ran has succeeded."""
    with transaction.atomic():
        version, review = _lock(review)
        statuses = list(review.check_runs.values_list("status", flat=True))
        if review.status != ReviewStatus.IN_PROGRESS or not statuses:
            return None
        if any(status != RunStatus.SUCCEEDED for status in statuses):
            return None
        escalation_record(review=review, version=version)
        if unacknowledged(review):
            _refuse_auto_pass(review)
            return None
        reason = f"All {len(statuses)} automated checks passed."
        apply_transition(
            review,
            "pass_review",
            actor=None,
            action="stage.pass",
            reason=reason,
            changes={"decided_at": timezone.now(), "decision_reason": reason},
        )
        pipeline.advance(version=version)
    return review


def _refuse_auto_pass(review: StageReview) -> None:
    """Flagged for human review: the checks passed, and still a reviewer must pass it."""
    reasons = " ".join(flag["reason"] for flag in review.escalation_flags)
    audit_record(
        actor=None,
        action="stage.auto_pass_refused",
        target=review,
        from_state=review.status,
        to_state=review.status,
        reason=f"Every check passed, but it needs human review: {reasons}",
        data={"flags": review.escalation_flags},
    )


def check_run_rerun(*, run: CheckRun, actor: User) -> CheckRun:
    """A reviewer of the stage runs a finished check again (its findings are replaced)."""
    owner = run.stage_review
    if owner is None:
        raise TransitionRefused(f"{run} came from an external tool or a re-match; it is not re-run by hand.")
    with transaction.atomic(durable=True):
        _version, review = _lock(owner)  # lock order: version, review, then the run
        run = CheckRun.objects.select_for_update().get(pk=run.pk)
        if not (actor.has_perm("reviews.waive_stagereview") or actor.has_perm("reviews.review_stagereview", review)):
            raise PermissionRefused(f"{actor} is not a reviewer of the {review.stage.name} stage.")
        refuse_own_submission(actor, review.version)
        if not review.is_open:
            raise TransitionRefused(f"{review} is {review.get_status_display().lower()}; its checks are final.")
        apply_transition(run, "requeue", actor=actor, action="check.rerun", changes={"attempts": 0, "error": ""})
        enqueue_after_commit(run)
    return run


def finding_triage(
    *, finding: Finding, actor: User, to_state: str, reason: str, plan: str = "", plan_due: date | None = None
) -> Finding:
    """Record a reviewer's judgement of a finding; every change leaves a trail row and an audit event."""
    reason = require_reason(reason, action="triage a finding")
    if to_state not in Triage.values:
        raise ValidationFailed(f"{to_state!r} is not a triage state.", code="invalid_triage")
    if to_state == Triage.REMEDIATION_PLANNED and not (plan.strip() and plan_due):
        raise ValidationFailed(
            "A remediation plan needs the plan and a due date.",
            code="plan_required",
            errors=[{"field": "plan", "code": "plan_required", "message": "Required."}],
        )
    with transaction.atomic(durable=True):
        finding = (
            Finding.objects.select_for_update(of=("self",))
            .select_related("version__plugin", "check_run__stage_review")
            .get(pk=finding.pk)
        )
        if not can_triage(actor=actor, finding=finding):
            raise PermissionRefused(f"{actor} does not review the stage that owns this finding of {finding.version}.")
        FindingTriage.objects.create(
            finding=finding,
            version_id=finding.version_id,
            fingerprint=finding.fingerprint,
            actor=actor,
            from_state=finding.triage,
            to_state=to_state,
            reason=reason,
            plan=plan,
            plan_due=plan_due,
        )
        audit_record(
            actor=actor,
            action="finding.triage",
            target=finding,
            from_state=finding.triage,
            to_state=to_state,
            reason=reason,
            data={"plan": plan, "plan_due": str(plan_due or "")},
        )
        finding.triage, finding.plan, finding.plan_due = to_state, plan, plan_due
        finding.save(update_fields=["triage", "plan", "plan_due"])
    return finding


def can_triage(*, actor: User, finding: Finding) -> bool:
    """The reviewers of the stage whose check found it may judge a finding; findings from
    external reports and advisory re-matches belong to the security stage. Nobody from the
    submitting organisation may, whatever else they hold."""
    if actor is None or not actor.is_active or is_org_member(actor, finding.version.plugin.organisation):
        return False
    if actor.has_perm("reviews.waive_stagereview"):
        return True
    run = finding.check_run  # callers load it with select_related("check_run__stage_review")
    owner = run.stage_review or (
        StageReview.objects.filter(version_id=finding.version_id, stage__kind=StageKind.SECURITY)
        .order_by("-round")
        .first()
    )
    return owner is not None and actor.has_perm("reviews.review_stagereview", owner)


# -- helpers ---------------------------------------------------------------------------


def _lock(review: StageReview) -> tuple[PluginVersion, StageReview]:
    version = PluginVersion.objects.select_for_update().get(pk=review.version_id)
    review = StageReview.objects.select_for_update(of=("self",)).select_related("stage").get(pk=review.pk)
    review.version = version
    return version, review


def _decide(
    review: StageReview, actor: User, transition: str, action: str, reason: str, data: dict | None = None
) -> tuple[PluginVersion, StageReview]:
    version, review = _lock(review)
    _check_reviewer(review, actor)
    _refuse_decision_stage(review)
    if review.assignee_id and review.assignee_id != actor.pk:
        raise PermissionRefused(
            f"{review} is assigned to {review.assignee}; claim it first or ask a lead to reassign it."
        )
    if transition == "pass_review":
        refuse_second_signoff(version, actor, exclude=[review])
        if review.stage.kind == StageKind.COMPLIANCE and not hasattr(review, "sign_off"):
            raise TransitionRefused(f"{review} passes by a compliance sign-off with a residual risk.")
        running = review.check_runs.filter(status__in=RUN_ACTIVE).values_list("check_key", flat=True)
        if running:
            raise TransitionRefused(f"{review} cannot pass while checks are running: {', '.join(running)}.")
    acknowledged = _acknowledge_escalation(review, version, reason) if transition == "pass_review" else {}
    changes = {**decided_fields(actor, reason), "assignee": review.assignee or actor, **acknowledged}
    if acknowledged:
        data = {**(data or {}), "escalation_acknowledged": review.escalation_flags}
    apply_transition(review, transition, actor=actor, action=action, reason=reason, changes=changes, data=data)
    return version, review


def _acknowledge_escalation(review: StageReview, version: PluginVersion, reason: str) -> dict:
    """A pass of a security review flagged for human review (reviews/escalation.py, the flags
    recomputed now) accepts the flags, and must say why."""
    if not escalation_record(review=review, version=version):
        return {}
    if not (reason or "").strip():
        raise ValidationFailed(
            f"{review} needs human review: {' '.join(f['reason'] for f in review.escalation_flags)} "
            "Give a reason that accepts them to pass it.",
            code="reason_required",
            errors=[{"field": "reason", "code": "reason_required", "message": "Required: the stage is flagged."}],
        )
    return {"escalation_acknowledged_at": timezone.now()}


def _check_reviewer(review: StageReview, actor: User) -> None:
    require_perm(
        actor,
        "reviews.review_stagereview",
        review,
        detail=f"{actor} is not a reviewer of the {review.stage.name} stage.",
    )
    refuse_own_submission(actor, review.version)
    if not is_qualified(actor, review.stage):
        raise PermissionRefused(
            f"{actor} holds no current {review.stage.required_qualification} qualification for {review.stage.name}."
        )


def _refuse_decision_stage(review: StageReview) -> None:
    if review.stage.kind == StageKind.DECISION:
        raise TransitionRefused(f"{review} is decided by approving or rejecting the version.")


def refuse_second_signoff(version: PluginVersion, actor: User, *, exclude: list[StageReview]) -> None:
    if not settings.WARDEN_SEPARATE_SIGNOFFS:
        return
    signed = (
        StageReview.objects.filter(
            version=version,
            round=version.review_round,
            decided_by=actor,
            status__in=[ReviewStatus.PASSED, ReviewStatus.WAIVED],
        )
        .exclude(pk__in=[r.pk for r in exclude])
        .select_related("stage")
        .first()
    )
    if signed:
        raise PermissionRefused(
            f"{actor} already signed off {signed.stage.name} of {version}; another person must sign this one."
        )


def decided_fields(actor: User, reason: str) -> dict:
    return {"decided_by": actor, "decided_at": timezone.now(), "decision_reason": reason}
