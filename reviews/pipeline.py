"""Moving a version through the configured stages. Internal to services.

Every function here runs inside the caller's transaction, after the caller has locked
the version row (lock order: version, then its stage reviews, then the audit head).
"""

from itertools import groupby

from django.utils import timezone
from guardian.shortcuts import assign_perm

from governance import hooks
from governance.models import Stage, StageKind
from governance.transitions import apply_transition, save_with_audit
from submissions.models import PluginVersion, VersionStatus

from .assignment import assign_on_start
from .checks.queue import queue_stage_checks
from .escalation import escalation_record
from .models import CLEARED, ReviewStatus, StageReview
from .notices import notify_awaiting_decision
from .sla import schedule


def current_reviews(version: PluginVersion) -> list[StageReview]:
    reviews = list(
        StageReview.objects.select_for_update(of=("self",))
        .filter(version=version, round=version.review_round)
        .select_related("stage")
        .order_by("stage__order", "stage__key")
    )
    for review in reviews:
        review.version = version  # the locked row the caller holds
    return reviews


def open_round(*, version: PluginVersion) -> list[StageReview]:
    """Create a pending review for every active stage and give each stage's group the
    object permission to act on it."""
    reviews = []
    for stage in Stage.objects.filter(active=True).order_by("order", "key"):
        review = StageReview(version=version, stage=stage, round=version.review_round, blocking=stage.blocking)
        save_with_audit(review, actor=None, action="stage.open", data={"round": version.review_round})
        assign_perm("reviews.review_stagereview", stage.owner_group, review)
        reviews.append(review)
    return reviews


def advance(*, version: PluginVersion) -> None:
    """Start what may start now; move the version on when its blocking stages are done.

    Orders run one after another; within an order every pending review starts together.
    Decision stages start only when every blocking review stage has cleared, at which
    point the version awaits the board's decision.
    """
    if version.status != VersionStatus.IN_REVIEW:
        return
    reviews = current_reviews(version)
    work = [r for r in reviews if r.stage.kind != StageKind.DECISION]
    for _order, same_order in groupby(work, key=lambda r: r.stage.order):
        group = list(same_order)
        for review in group:
            if review.status == ReviewStatus.PENDING:
                _start(review)
        if any(r.blocking and r.status not in CLEARED for r in group):
            return
    apply_transition(
        version,
        "await_decision",
        actor=None,
        action="version.await_decision",
        reason="Every blocking stage has passed.",
    )
    hooks.fire(hooks.VERSION_AWAITING_DECISION, version=version)  # decisions rates and evaluates, for the board
    notify_awaiting_decision(version=version)
    for review in reviews:
        if review.stage.kind == StageKind.DECISION and review.status == ReviewStatus.PENDING:
            _start(review)


def close_round(*, version: PluginVersion, reason: str, keep: StageReview | None = None) -> None:
    """Cancel every review of the round still open (the round ended some other way)."""
    for review in current_reviews(version):
        if review.is_open and review != keep:
            apply_transition(
                review,
                "cancel",
                actor=None,
                action="stage.cancel",
                reason=reason,
                changes={"decided_at": timezone.now()},  # when its clock stopped
            )


def _start(review: StageReview) -> None:
    apply_transition(
        review, "start", actor=None, action="stage.start", changes=schedule(review=review, now=timezone.now())
    )
    if review.stage.kind != StageKind.DECISION:  # the board decides together; nobody is assigned
        assign_on_start(review=review)
    # what the manifest adds is known now: flagged before any check runs, so no path (a waiver,
    # a stage without checks) reaches the board unflagged; the checks' findings add to it later
    escalation_record(review=review, version=review.version)
    hooks.fire(hooks.STAGE_STARTED, review=review)  # compliance opens its assessments
    queue_stage_checks(review=review)


def close_round_on_withdrawal(*, version: PluginVersion) -> None:
    """The ``version_withdrawn`` hook (reviews/apps.py): the author withdrew, the round ends."""
    close_round(version=version, reason="The author withdrew the version.")
