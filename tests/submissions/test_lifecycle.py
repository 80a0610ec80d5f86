"""One version from draft to approved through the services, checked at every step."""

import pytest

from decisions import deployment
from governance.models import AuditEvent
from reviews import services as review
from reviews.models import ReviewStatus
from submissions import services as sub
from submissions.models import VersionStatus
from tests.conftest import approve, current_review, last_audit, open_review, sign_off

pytestmark = pytest.mark.django_db


def assert_step(obj, *, status: str, action: str, actor, reason: str = "") -> None:
    """State, then the newest history row, then the newest audit row."""
    obj.refresh_from_db()
    assert obj.status == status
    history = obj.history.first()
    assert history.status == status
    assert history.history_user == actor
    event = last_audit(obj)
    assert (event.action, event.to_state, event.actor, event.reason) == (action, status, actor, reason)


def test_draft_to_approved(
    draft,
    author,
    pipeline,
    security,
    performance,
    compliance,
    board,
    platform_admin,
    django_capture_on_commit_callbacks,
):
    assert draft.status == VersionStatus.DRAFT
    assert draft.history.get().history_user == author
    assert (last_audit(draft).action, last_audit(draft).actor) == ("version.create", author)

    # submit: the start task runs on commit and opens round 1 with eligibility in progress
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        sub.version_submit(version=draft, actor=author)
    assert callbacks  # the start task, then the eligibility checks it queued
    assert draft.check_runs.count() == len(pipeline["eligibility"].checks)
    draft.refresh_from_db()
    assert draft.status == VersionStatus.IN_REVIEW and draft.review_round == 1
    assert list(draft.history.order_by("history_id").values_list("status", flat=True)) == [
        "draft",
        "submitted",
        "in_review",
    ]
    assert AuditEvent.objects.filter(object_id=str(draft.pk), action="version.submit").get().actor == author
    assert_step(draft, status=VersionStatus.IN_REVIEW, action="version.start", actor=None)

    eligibility = open_review(draft, "eligibility")
    assert eligibility.due_at is not None
    for key in ("security", "performance", "compliance", "decision"):
        assert current_review(draft, key).status == ReviewStatus.PENDING

    # eligibility passes: the three order-2 stages start together
    review.stage_pass(review=eligibility, actor=platform_admin, reason="Manifest and licence fine.")
    assert_step(
        eligibility,
        status=ReviewStatus.PASSED,
        action="stage.pass",
        actor=platform_admin,
        reason="Manifest and licence fine.",
    )
    assert eligibility.decided_by == platform_admin
    # the order-2 stages start together, each given to its (only) qualified reviewer
    for key, reviewer in (("security", security), ("performance", performance), ("compliance", compliance)):
        started = open_review(draft, key)
        assert_step(started, status=ReviewStatus.IN_PROGRESS, action="stage.assign", actor=None)
        assert started.assignee == reviewer
        assert AuditEvent.objects.filter(object_id=str(started.pk), action="stage.start").exists()
    sec = open_review(draft, "security")
    review.stage_pass(review=sec, actor=security)
    sign_off(draft, compliance)
    draft.refresh_from_db()
    assert draft.status == VersionStatus.IN_REVIEW, "performance is still open"
    assert current_review(draft, "decision").status == ReviewStatus.PENDING

    review.stage_pass(review=open_review(draft, "performance"), actor=performance)
    assert_step(
        draft,
        status=VersionStatus.AWAITING_DECISION,
        action="version.await_decision",
        actor=None,
        reason="Every blocking stage has passed.",
    )
    decision = open_review(draft, "decision")

    approve(version=draft, actor=board, reason="Low risk.")
    assert_step(draft, status=VersionStatus.APPROVED, action="version.approve", actor=board, reason="Low risk.")
    assert_step(decision, status=ReviewStatus.PASSED, action="stage.pass", actor=board, reason="Low risk.")
    assert draft.decided_at is not None


def test_changes_requested_then_resubmitted_starts_a_new_round(
    in_review, author, platform_admin, compliance, django_capture_on_commit_callbacks
):
    review.stage_pass(review=open_review(in_review, "eligibility"), actor=platform_admin)
    review.stage_request_changes(
        review=open_review(in_review, "compliance"), actor=compliance, reason="Add the data-flow diagram."
    )
    assert_step(
        in_review,
        status=VersionStatus.CHANGES_REQUESTED,
        action="version.request_changes",
        actor=compliance,
        reason="Add the data-flow diagram.",
    )
    # the round's other open reviews were closed, so nobody works on a stale round
    statuses = dict(in_review.stage_reviews.filter(round=1).values_list("stage__key", "status"))
    assert statuses == {
        "eligibility": "passed",
        "compliance": "changes_requested",
        "security": "cancelled",
        "performance": "cancelled",
        "decision": "cancelled",
    }

    with django_capture_on_commit_callbacks(execute=True):
        sub.version_resubmit(version=in_review, actor=author, reason="Diagram added.")
    in_review.refresh_from_db()
    assert in_review.status == VersionStatus.IN_REVIEW and in_review.review_round == 2
    assert open_review(in_review, "eligibility").round == 2
    assert in_review.stage_reviews.count() == 10


def test_failed_blocking_stage_rejects(in_review, platform_admin, security):
    review.stage_pass(review=open_review(in_review, "eligibility"), actor=platform_admin)
    review.stage_fail(review=open_review(in_review, "security"), actor=security, reason="Exfiltrates tokens.")
    assert_step(
        in_review,
        status=VersionStatus.REJECTED,
        action="version.reject",
        actor=None,
        reason="Blocking stage Security review failed: Exfiltrates tokens.",
    )
    assert current_review(in_review, "performance").status == ReviewStatus.CANCELLED


def start_with_advisory_performance(draft, author, pipeline, capture):
    """Make performance non-blocking, then submit: the round takes the setting with it."""
    pipeline["performance"].blocking = False
    pipeline["performance"].save()
    with capture(execute=True):
        sub.version_submit(version=draft, actor=author)
    return draft


def test_failed_non_blocking_stage_lets_the_pipeline_go_on(
    draft, author, pipeline, platform_admin, security, compliance, performance, django_capture_on_commit_callbacks
):
    version = start_with_advisory_performance(draft, author, pipeline, django_capture_on_commit_callbacks)
    review.stage_pass(review=open_review(version, "eligibility"), actor=platform_admin)
    review.stage_fail(review=open_review(version, "performance"), actor=performance, reason="Slow, advisory only.")
    version.refresh_from_db()
    assert version.status == VersionStatus.IN_REVIEW
    review.stage_pass(review=open_review(version, "security"), actor=security)
    sign_off(version, compliance)
    version.refresh_from_db()
    assert version.status == VersionStatus.AWAITING_DECISION
    assert current_review(version, "performance").status == ReviewStatus.FAILED


def test_non_blocking_stage_does_not_hold_up_the_next_order(
    draft, author, pipeline, platform_admin, security, compliance, board, django_capture_on_commit_callbacks
):
    version = start_with_advisory_performance(draft, author, pipeline, django_capture_on_commit_callbacks)
    review.stage_pass(review=open_review(version, "eligibility"), actor=platform_admin)
    review.stage_pass(review=open_review(version, "security"), actor=security)
    sign_off(version, compliance)
    version.refresh_from_db()
    assert version.status == VersionStatus.AWAITING_DECISION
    assert current_review(version, "performance").status == ReviewStatus.IN_PROGRESS
    # approval closes what is still open, so nothing lingers in queues
    approve(version=version, actor=board)
    assert current_review(version, "performance").status == ReviewStatus.CANCELLED


def test_a_stage_edited_mid_round_does_not_change_the_round(
    draft, author, pipeline, platform_admin, security, compliance, performance, django_capture_on_commit_callbacks
):
    version = start_with_advisory_performance(draft, author, pipeline, django_capture_on_commit_callbacks)
    review.stage_pass(review=open_review(version, "eligibility"), actor=platform_admin)
    review.stage_fail(review=open_review(version, "performance"), actor=performance, reason="Slow.")
    pipeline["performance"].blocking = True
    pipeline["performance"].save()
    review.stage_pass(review=open_review(version, "security"), actor=security)
    sign_off(version, compliance)
    version.refresh_from_db()
    assert version.status == VersionStatus.AWAITING_DECISION


def test_waive_lets_the_pipeline_go_on(in_review, platform_admin):
    review.stage_waive(
        review=current_review(in_review, "eligibility"), actor=platform_admin, reason="Eligibility checked by hand."
    )
    assert_step(
        current_review(in_review, "eligibility"),
        status=ReviewStatus.WAIVED,
        action="stage.waive",
        actor=platform_admin,
        reason="Eligibility checked by hand.",
    )
    assert current_review(in_review, "security").status == ReviewStatus.IN_PROGRESS


def test_withdraw_closes_open_reviews(in_review, author):
    sub.version_withdraw(version=in_review, actor=author, reason="Found a bug.")
    assert_step(
        in_review, status=VersionStatus.WITHDRAWN, action="version.withdraw", actor=author, reason="Found a bug."
    )
    assert not in_review.stage_reviews.filter(status__in=["pending", "in_progress"]).exists()


def test_deploy_supersedes_and_roll_back_reinstates(make_approved, platform_admin, environment):
    versions = []
    for number in ("1.0.0", "1.1.0"):
        versions.append(make_approved(number))
        deployment.version_deploy(version=versions[-1], environment=environment, actor=platform_admin)
    old, new = versions
    assert_step(
        old,
        status=VersionStatus.SUPERSEDED,
        action="version.supersede",
        actor=None,
        reason=f"{new} was deployed to Production.",
    )
    deployment.version_roll_back(
        version=new, environment=environment, actor=platform_admin, reason="Errors after release."
    )
    assert_step(
        new,
        status=VersionStatus.ROLLED_BACK,
        action="version.roll_back",
        actor=platform_admin,
        reason="Errors after release.",
    )
    assert_step(
        old,
        status=VersionStatus.DEPLOYED,
        action="version.reinstate",
        actor=platform_admin,
        reason=f"{new} was rolled back in Production.",
    )


def test_deploy_evaluates_the_policies_again_and_refuses_once_an_exemption_expired(
    tmp_path, plugin, make_approved, author, board, platform_admin, environment
):
    from datetime import UTC, datetime, timedelta

    import time_machine
    from django.utils import timezone

    from decisions.exemptions import exemption_approve, exemption_request
    from decisions.models import PolicyEvaluation
    from governance.errors import PolicyBlocked
    from tests.decisions.test_policies import add_critical, load, policy_yaml

    start = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    with time_machine.travel(start, tick=False):
        load(tmp_path, critical=policy_yaml("no-critical", "findings.open.critical == 0", message="Fix criticals."))
        exemption = exemption_request(
            actor=author,
            plugin=plugin,
            scope="plugin",
            policy_key="no-critical",
            justification="Only reachable from the admin console; fixed in 1.2.",
            expires_at=timezone.now() + timedelta(days=30),
        )
        exemption_approve(exemption=exemption, actor=board)
        first, second = make_approved("1.0.0"), make_approved("1.1.0")
        for version in (first, second):
            add_critical(version)  # reported by CI after the approval

    with time_machine.travel(start + timedelta(days=1), tick=False):
        deployment.version_deploy(version=first, environment=environment, actor=platform_admin)  # still exempted
    assert_step(first, status=VersionStatus.DEPLOYED, action="version.deploy", actor=platform_admin)
    evaluation = PolicyEvaluation.objects.get(version=first, trigger="deploy")
    assert evaluation.passed and evaluation.results[0]["outcome"] == "exempted"

    evaluations = PolicyEvaluation.objects.count()
    with (
        time_machine.travel(start + timedelta(days=30, minutes=1), tick=False),
        pytest.raises(PolicyBlocked) as blocked,
    ):
        deployment.version_deploy(version=second, environment=environment, actor=platform_admin)
    assert blocked.value.detail == f"{second} cannot be deployed: [no-critical] Fix criticals."
    assert blocked.value.status == 409
    assert_step(second, status=VersionStatus.APPROVED, action="version.approve", actor=board)  # nothing changed
    first.refresh_from_db()
    assert first.status == VersionStatus.DEPLOYED  # not superseded by the refused deployment
    assert PolicyEvaluation.objects.count() == evaluations
    assert not AuditEvent.objects.filter(action="version.deploy", object_id=str(second.pk)).exists()


def test_the_admin_deploy_button_shows_the_blocking_policy_and_changes_nothing(
    tmp_path, client, make_approved, platform_admin, board, environment
):
    from django.contrib.messages import get_messages
    from django.urls import reverse

    from tests.decisions.test_policies import add_critical, load, policy_yaml

    load(tmp_path, critical=policy_yaml("no-critical", "findings.open.critical == 0", message="Fix criticals."))
    version = make_approved("1.0.0")
    add_critical(version)
    client.force_login(platform_admin)
    response = client.post(
        reverse("admin:submissions_pluginversion_act", args=[version.pk, "deploy"]),
        {"environment": environment.pk, "reason": ""},
    )
    assert response.status_code == 302
    [message] = [str(m) for m in get_messages(response.wsgi_request)]
    assert message.startswith("Deploy refused for") and "[no-critical] Fix criticals." in message
    assert_step(version, status=VersionStatus.APPROVED, action="version.approve", actor=board)
