"""Approve, auto-approve and reject: the board's (or the system's) decision on a version.

Each runs in one transaction: lock the version, judge the rating and the policy evaluation,
record the decision with what it was taken on, move the version and its decision-stage
reviews, close the round, then ask for feedback and tell the people concerned.
"""

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from governance.models import StageKind
from governance.permissions import refuse_own_submission, require_perm
from governance.transitions import apply_transition, require_reason
from reviews import pipeline
from reviews.collaboration import feedback_request
from reviews.models import ReviewStatus, StageReview
from reviews.notices import notify_decided
from reviews.services import decided_fields, refuse_second_signoff
from submissions.models import PluginVersion, VersionStatus

from .attestations import attestation_issue
from .feed import feed_record
from .models import Decision
from .services import (
    DecisionBasis,
    approval_check,
    auto_approvable,
    decision_basis,
    decision_record,
    shown_basis,
    version_assess,
)


def version_approve(
    *, version: PluginVersion, actor: User, rating_id: int | None, evaluation_id: int | None, reason: str = ""
) -> PluginVersion:
    """The board approves the rating and policy evaluation it was shown, named by id.

    1. Lock the version: the board only, never the submitter, never a second sign-off.
    2. Rate and evaluate again. If that differs from what was shown, the new rating and
       evaluation are committed and the approval is refused (``facts_changed``), so the board
       decides again on what holds now.
    3. An enforce-mode violation refuses it with the policy's message; else it is approved and
       the decision stored with the ids and digests of what it approved (and in its audit row).
    """
    judgement = None
    with transaction.atomic(durable=True):
        version = _lock_version_for_decision(version, actor)
        decision_reviews = [r for r in pipeline.current_reviews(version) if r.stage.kind == StageKind.DECISION]
        refuse_second_signoff(version, actor, exclude=decision_reviews)
        if version.status == VersionStatus.AWAITING_DECISION:  # else the transition refuses it below
            judgement = approval_check(version=version, actor=actor, rating_id=rating_id, evaluation_id=evaluation_id)
        if judgement is None or not judgement.stale:
            basis = judgement.shown if judgement else decision_basis(version=version)
            decided = decision_record(version=version, action="approve", actor=actor, reason=reason, basis=basis)
            _approve(version, decision_reviews, actor=actor, action="version.approve", reason=reason, data=decided)
            attestation_issue(decision=Decision.objects.get(pk=decided["decision"]))
            feed_record(version=version, event="approved")  # after the attestation, which the entry links
    if judgement is not None and judgement.stale:
        raise judgement.refusal(version)  # after the commit: the new rating stays for the board
    return version


def version_auto_approve(*, version: PluginVersion) -> PluginVersion | None:
    """System: approve a version whose category has auto-approval, whose rating is low and
    whose policies all pass, judged again now (something may have changed since it was queued)."""
    with transaction.atomic(durable=True):
        version = PluginVersion.objects.select_for_update(of=("self",)).select_related("plugin").get(pk=version.pk)
        if version.status != VersionStatus.AWAITING_DECISION:
            return None
        stored = version_assess(version=version, trigger="auto_approve")  # recorded, approved or not
        if not auto_approvable(version=version, assessment=stored.assessment):
            return None
        reason = f"Auto-approved: risk {stored.rating.total} (low) and every policy passes."
        decision_reviews = [r for r in pipeline.current_reviews(version) if r.stage.kind == StageKind.DECISION]
        basis = DecisionBasis(rating=stored.rating, evaluation=stored.evaluation)
        decided = decision_record(version=version, action="auto_approve", actor=None, reason=reason, basis=basis)
        _approve(version, decision_reviews, actor=None, action="version.auto_approve", reason=reason, data=decided)
        attestation_issue(decision=Decision.objects.get(pk=decided["decision"]))
        feed_record(version=version, event="approved")
    return version


def _approve(
    version: PluginVersion,
    decision_reviews: list[StageReview],
    *,
    actor: User | None,
    action: str,
    reason: str,
    data: dict,
) -> None:
    apply_transition(
        version,
        "approve",
        actor=actor,
        action=action,
        reason=reason,
        changes={"decided_at": timezone.now(), "decision_reason": reason},
        data=data,
    )
    for review in decision_reviews:
        if review.status == ReviewStatus.IN_PROGRESS:
            apply_transition(
                review,
                "pass_review",
                actor=actor,
                action="stage.pass",
                reason=reason,
                # None on auto-approval (decided_by is nullable); reviews.services.decided_fields says User only
                changes=decided_fields(actor, reason),  # type: ignore[arg-type]
            )
    pipeline.close_round(version=version, reason="The version was approved.")
    feedback_request(version=version)
    notify_decided(version=version, action="approved", reason=reason, actor=actor)


def version_reject(
    *, version: PluginVersion, actor: User, reason: str, rating_id: int | None = None, evaluation_id: int | None = None
) -> PluginVersion:
    """The board rejects; the decision records the rating and evaluation it was shown (named,
    or else the latest)."""
    reason = require_reason(reason, action="reject a version")
    with transaction.atomic(durable=True):
        version = _lock_version_for_decision(version, actor)
        basis = (
            decision_basis(version=version)
            if rating_id is None and evaluation_id is None
            else shown_basis(version=version, rating_id=rating_id, evaluation_id=evaluation_id)
        )
        decided = decision_record(version=version, action="reject", actor=actor, reason=reason, basis=basis)
        apply_transition(
            version,
            "reject",
            actor=actor,
            action="version.reject",
            reason=reason,
            changes={"decided_at": timezone.now(), "decision_reason": reason},
            data=decided,
        )
        for review in pipeline.current_reviews(version):
            if review.stage.kind == StageKind.DECISION and review.status == ReviewStatus.IN_PROGRESS:
                apply_transition(
                    review,
                    "fail",
                    actor=actor,
                    action="stage.fail",
                    reason=reason,
                    changes=decided_fields(actor, reason),
                )
        pipeline.close_round(version=version, reason="The version was rejected.")
        feedback_request(version=version)
        notify_decided(version=version, action="rejected", reason=reason, actor=actor)
    return version


def _lock_version_for_decision(version: PluginVersion, actor: User) -> PluginVersion:
    version = (
        PluginVersion.objects.select_for_update(of=("self",)).select_related("plugin__organisation").get(pk=version.pk)
    )
    require_perm(actor, "submissions.decide_pluginversion", detail=f"{actor} is not on the approval board.")
    refuse_own_submission(actor, version)
    return version
