"""Every illegal transition is refused with a clear error and changes nothing."""

from contextlib import contextmanager

import pytest

from decisions import approval, deployment
from governance.errors import PermissionRefused, TransitionRefused, ValidationFailed
from governance.models import AuditEvent
from reviews import services as review
from reviews.models import StageReview
from submissions import services as sub
from submissions.models import PluginVersion
from tests.conftest import approve, current_review, make_user, open_review, sign_off

pytestmark = pytest.mark.django_db


def snapshot():
    return (
        AuditEvent.objects.count(),
        PluginVersion.history.count(),
        StageReview.history.count(),
        sorted(PluginVersion.objects.values_list("pk", "status")),
        sorted(StageReview.objects.values_list("pk", "status", "assignee")),
    )


@contextmanager
def refused(error: type, match: str):
    before = snapshot()
    with pytest.raises(error, match=match):
        yield
    assert snapshot() == before


# -- wrong state ---------------------------------------------------------------------


def test_submit_twice_is_refused(draft, author, pipeline):
    sub.version_submit(version=draft, actor=author)
    with refused(TransitionRefused, "Cannot submit acme-exporter 1.4.0: it is submitted"):
        sub.version_submit(version=draft, actor=author)


def test_approve_while_in_review_is_refused(in_review, board):
    with refused(TransitionRefused, "it is in review"):
        approve(version=in_review, actor=board)


def test_resubmit_without_a_changes_request_is_refused(in_review, author):
    with refused(TransitionRefused, "Cannot resubmit"):
        sub.version_resubmit(version=in_review, actor=author, reason="again")


def test_pass_a_pending_stage_is_refused(in_review, security):
    with refused(TransitionRefused, "it is pending"):
        review.stage_pass(review=current_review(in_review, "security"), actor=security)


def test_pass_a_passed_stage_is_refused(in_review, platform_admin):
    eligibility = open_review(in_review, "eligibility")
    review.stage_pass(review=eligibility, actor=platform_admin)
    with refused(TransitionRefused, "it is passed"):
        review.stage_pass(review=eligibility, actor=platform_admin)


def test_deploy_a_version_in_review_is_refused(in_review, platform_admin, environment):
    with refused(TransitionRefused, "Cannot deploy"):
        deployment.version_deploy(version=in_review, environment=environment, actor=platform_admin)


def test_withdraw_a_rejected_version_is_refused(in_review, author, board):
    approval.version_reject(version=in_review, actor=board, reason="No.")
    with refused(TransitionRefused, "it is rejected"):
        sub.version_withdraw(version=in_review, actor=author, reason="too late")


def test_decision_stage_cannot_be_passed_as_a_stage(
    in_review, platform_admin, security, performance, compliance, board
):
    review.stage_pass(review=open_review(in_review, "eligibility"), actor=platform_admin)
    for key, who in (("security", security), ("performance", performance)):
        review.stage_pass(review=open_review(in_review, key), actor=who)
    sign_off(in_review, compliance)
    with refused(TransitionRefused, "decided by approving or rejecting"):
        review.stage_pass(review=open_review(in_review, "decision"), actor=board)


def test_the_protected_status_cannot_be_assigned(draft):
    with pytest.raises(AttributeError, match="Direct status modification is not allowed"):
        draft.status = "approved"


# -- wrong user ----------------------------------------------------------------------


def test_author_of_another_organisation_cannot_submit(draft, other_author, pipeline):
    with refused(PermissionRefused, "is not an author of acme/acme-exporter"):
        sub.version_submit(version=draft, actor=other_author)


def test_reviewer_of_another_stage_cannot_pass(in_review, security):
    with refused(PermissionRefused, "security is not a reviewer of the Eligibility stage"):
        review.stage_pass(review=open_review(in_review, "eligibility"), actor=security)


def test_outsider_cannot_claim_or_decide(in_review, outsider):
    eligibility = open_review(in_review, "eligibility")
    with refused(PermissionRefused, "not a reviewer"):
        review.stage_claim(review=eligibility, actor=outsider)
    with refused(PermissionRefused, "not on the approval board"):
        approval.version_reject(version=in_review, actor=outsider, reason="x")
    with refused(PermissionRefused, "may not waive"):
        review.stage_waive(review=eligibility, actor=outsider, reason="x")


def test_reviewer_cannot_act_on_a_review_claimed_by_another(in_review, platform_admin, security, security2):
    review.stage_pass(review=open_review(in_review, "eligibility"), actor=platform_admin)
    sec = open_review(in_review, "security")
    review.stage_claim(review=sec, actor=security)
    with refused(PermissionRefused, "is assigned to security"):
        review.stage_pass(review=sec, actor=security2)
    with refused(TransitionRefused, "already claimed by security"):
        review.stage_claim(review=sec, actor=security2)


def test_one_person_cannot_sign_off_two_stages(in_review, platform_admin, security):
    security.groups.add(*platform_admin.groups.all())  # now also a platform admin
    eligibility = open_review(in_review, "eligibility")
    review.stage_assign(review=eligibility, actor=platform_admin, to=security)
    review.stage_pass(review=eligibility, actor=security)
    with refused(PermissionRefused, "already signed off Eligibility"):
        review.stage_pass(review=open_review(in_review, "security"), actor=security)


def test_reason_is_required_to_fail(in_review, platform_admin):
    with refused(ValidationFailed, "A reason is required to fail a stage"):
        review.stage_fail(review=open_review(in_review, "eligibility"), actor=platform_admin, reason="  ")


def test_inactive_user_is_refused(in_review, platform_admin):
    platform_admin.is_active = False
    platform_admin.save()
    with refused(PermissionRefused, "not a reviewer"):
        review.stage_pass(review=open_review(in_review, "eligibility"), actor=platform_admin)


# -- own submission ------------------------------------------------------------------


def test_submitter_can_never_review_its_own_submission(in_review, author, platform_admin, django_user_model):
    """Even holding every reviewer role, the author is refused, and so are its colleagues."""
    author.groups.add(*platform_admin.groups.all())
    eligibility = open_review(in_review, "eligibility")
    for action in (review.stage_pass, review.stage_fail, review.stage_claim):
        kwargs = {"reason": "mine"} if action is not review.stage_claim else {}
        with refused(PermissionRefused, "belongs to the organisation that submitted"):
            action(review=eligibility, actor=author, **kwargs)
    with refused(PermissionRefused, "belongs to the organisation that submitted"):
        review.stage_waive(review=eligibility, actor=author, reason="mine")

    colleague = make_user(django_user_model, "acme-reviewer")
    colleague.groups.add(in_review.plugin.organisation.group, *platform_admin.groups.all())
    with refused(PermissionRefused, "belongs to the organisation that submitted"):
        review.stage_pass(review=eligibility, actor=colleague)


def test_superuser_from_the_submitting_organisation_is_refused(in_review, django_user_model):
    boss = django_user_model.objects.create_superuser("boss", "boss@example.com", "pw")
    boss.groups.add(in_review.plugin.organisation.group)
    with refused(PermissionRefused, "belongs to the organisation that submitted"):
        review.stage_pass(review=open_review(in_review, "eligibility"), actor=boss)


def test_one_person_cannot_waive_after_signing_off(in_review, platform_admin):
    review.stage_pass(review=open_review(in_review, "eligibility"), actor=platform_admin)
    with refused(PermissionRefused, "already signed off Eligibility"):
        review.stage_waive(review=open_review(in_review, "security"), actor=platform_admin, reason="trust me")


def test_duplicate_organisation_is_refused(acme, platform_admin):
    with refused(ValidationFailed, "already exists"):
        sub.organisation_create(name="ACME CORP", slug="acme-2", actor=platform_admin)
    with refused(ValidationFailed, "already exists"):
        sub.organisation_create(name="Other", slug="acme", actor=platform_admin)
