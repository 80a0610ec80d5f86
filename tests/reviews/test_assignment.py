"""Qualification- and workload-aware assignment, hand-over and reassignment."""

import os
from datetime import date, timedelta

import pytest
import time_machine
from django.utils import timezone

from governance import roles
from governance.errors import PermissionRefused, TransitionRefused, ValidationFailed
from governance.models import Notification, ReviewerProfile
from reviews import services as review
from reviews.models import ReviewerQualification
from submissions import services as sub
from submissions.samples import plugin_archive
from tests.conftest import make_user, open_review

pytestmark = pytest.mark.django_db


@pytest.fixture
def reviewers(django_user_model):
    """Three security reviewers: ann, bob, and cy whose qualification lapsed last week."""
    ann = make_user(django_user_model, "ann", roles.SECURITY_REVIEWERS)
    bob = make_user(django_user_model, "bob", roles.SECURITY_REVIEWERS)
    cy = make_user(django_user_model, "cy", roles.SECURITY_REVIEWERS)
    ReviewerQualification.objects.filter(reviewer=cy).update(expires_on=timezone.localdate() - timedelta(days=7))
    return ann, bob, cy


def reach_security(plugin, author, platform_admin, number, capture, **archive):
    version = sub.version_create(plugin=plugin, artifact=plugin_archive(plugin.name, number, **archive), actor=author)
    with capture(execute=True):
        sub.version_submit(version=version, actor=author)
    review.stage_pass(review=open_review(version, "eligibility"), actor=platform_admin)
    return open_review(version, "security")


def test_the_least_loaded_qualified_reviewer_gets_it(
    plugin, author, pipeline, platform_admin, reviewers, django_capture_on_commit_callbacks
):
    ann, bob, cy = reviewers
    first = reach_security(plugin, author, platform_admin, "1.0.0", django_capture_on_commit_callbacks)
    second = reach_security(plugin, author, platform_admin, "1.1.0", django_capture_on_commit_callbacks)
    assert {first.assignee, second.assignee} == {ann, bob}  # one each; cy's qualification lapsed
    # a big plugin weighs more: whoever has it is passed over for the next one
    big = reach_security(
        plugin,
        author,
        platform_admin,
        "1.2.0",
        django_capture_on_commit_callbacks,
        files={"data/blob.bin": os.urandom(3 * 1024 * 1024)},  # 3 MiB that will not compress
    )
    light = reach_security(plugin, author, platform_admin, "1.3.0", django_capture_on_commit_callbacks)
    assert light.assignee != big.assignee
    assert cy not in {first.assignee, second.assignee, big.assignee, light.assignee}


def test_nobody_from_the_submitting_organisation_is_assigned(
    plugin, author, pipeline, platform_admin, reviewers, acme, django_capture_on_commit_callbacks
):
    ann, bob, _cy = reviewers
    ann.groups.add(acme.group)  # ann now works for the vendor
    first = reach_security(plugin, author, platform_admin, "1.0.0", django_capture_on_commit_callbacks)
    second = reach_security(plugin, author, platform_admin, "1.1.0", django_capture_on_commit_callbacks)
    assert first.assignee == second.assignee == bob


def test_with_no_qualified_reviewer_the_stage_is_flagged_and_admins_told(
    plugin, author, pipeline, platform_admin, django_user_model, django_capture_on_commit_callbacks
):
    make_user(django_user_model, "unqualified", roles.SECURITY_REVIEWERS, qualified=False)
    security_review = reach_security(plugin, author, platform_admin, "1.0.0", django_capture_on_commit_callbacks)
    assert security_review.assignee is None
    assert security_review.unassigned_reason == "No qualified reviewer in Security reviewers can take it."
    told = Notification.objects.get(event="stage.unassigned", subject__contains="Security review")
    assert told.recipient == platform_admin and "Nobody can review" in told.subject


def test_a_lapsed_qualification_cannot_sign_off(in_review, platform_admin, security):
    review.stage_pass(review=open_review(in_review, "eligibility"), actor=platform_admin)
    security_review = open_review(in_review, "security")
    assert security_review.assignee == security
    ReviewerQualification.objects.filter(reviewer=security).update(expires_on=date(2026, 1, 2))
    with pytest.raises(PermissionRefused, match="holds no current security qualification"):
        review.stage_pass(review=security_review, actor=security)


def test_release_hand_over_and_reassign(in_review, platform_admin, security, security2, django_user_model):
    review.stage_pass(review=open_review(in_review, "eligibility"), actor=platform_admin)
    security_review = open_review(in_review, "security")
    assert security_review.assignee == security
    with pytest.raises(TransitionRefused, match="not yours"):
        review.stage_release(review=security_review, actor=security2)
    review.stage_assign(review=security_review, actor=security, to=security2)  # hand over
    assert open_review(in_review, "security").assignee == security2
    assert Notification.objects.filter(event="stage.assigned").latest("pk").recipient == security2

    outsider_lead = make_user(django_user_model, "someone")
    with pytest.raises(PermissionRefused, match="only its assignee, their lead or a platform admin"):
        review.stage_assign(review=security_review, actor=outsider_lead, to=security)
    ReviewerProfile.objects.create(user=security2, lead=outsider_lead)
    review.stage_assign(review=security_review, actor=outsider_lead, to=security)  # the lead reassigns
    assert open_review(in_review, "security").assignee == security

    with pytest.raises(ValidationFailed, match="cannot review"):
        review.stage_assign(review=security_review, actor=platform_admin, to=platform_admin)
    review.stage_release(review=security_review, actor=security)
    assert open_review(in_review, "security").assignee is None


def test_the_admin_shows_who_is_about_to_lapse(client, platform_admin, security, security2):
    from django.urls import reverse

    soon = timezone.localdate() + timedelta(days=10)
    ReviewerQualification.objects.filter(reviewer=security).update(expires_on=soon)
    client.force_login(platform_admin)
    page = client.get(reverse("admin:reviews_reviewerqualification_changelist") + "?lapse=30d")
    assert [q.reviewer for q in page.context["cl"].result_list] == [security]
    with time_machine.travel(timezone.now() + timedelta(days=11)):
        page = client.get(reverse("admin:reviews_reviewerqualification_changelist") + "?lapse=lapsed")
        assert [q.reviewer for q in page.context["cl"].result_list] == [security]


def test_a_lapsed_training_record_lapses_the_qualification_it_rests_on(in_review, platform_admin, security):
    from reviews.models import TrainingRecord

    training = TrainingRecord.objects.create(
        user=security,
        course="Secure code review",
        completed_on=date(2025, 1, 1),
        expires_on=timezone.localdate() - timedelta(days=1),
    )
    ReviewerQualification.objects.filter(reviewer=security).update(training=training)
    review.stage_pass(review=open_review(in_review, "eligibility"), actor=platform_admin)
    security_review = open_review(in_review, "security")
    assert security_review.assignee is None
    assert "No qualified reviewer" in security_review.unassigned_reason


def test_the_automatic_assignee_is_told(in_review, platform_admin, security):
    review.stage_pass(review=open_review(in_review, "eligibility"), actor=platform_admin)
    told = Notification.objects.filter(event="stage.assigned", recipient=security).get()
    assert "Security review" in told.subject and told.subject.endswith("is yours")


def test_a_stage_the_system_passed_does_not_block_assignment(
    plugin, author, pipeline, security, compliance, performance, django_capture_on_commit_callbacks
):
    from governance.models import AllowedLicence, HostPlatform

    HostPlatform.objects.create(name="Host", api_version="2.4", is_default=True)
    AllowedLicence.objects.create(spdx_id="MIT")
    version = sub.version_create(plugin=plugin, artifact=plugin_archive(plugin.name, "1.0.0"), actor=author)
    with django_capture_on_commit_callbacks(execute=True):
        sub.version_submit(version=version, actor=author)
    assert open_review(version, "security").assignee == security  # eligibility passed on its own first
    assert open_review(version, "compliance").assignee == compliance
