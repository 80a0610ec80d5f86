"""Who is told about a version's lifecycle (docs/workflow.md, "Who is told about a version's
lifecycle"): one test per row of the table, the header count and the home list."""

import pytest
from django.core import mail
from django.urls import reverse

from decisions import approval, deployment
from governance.models import Notification, NotificationPreference
from governance.notifications import notifications_send
from reviews import services as review
from reviews.checks import REGISTRY, CheckSpec
from reviews.checks.engine import check_run_execute
from reviews.models import CheckRun, RunStatus
from submissions import services as sub
from tests.conftest import approve, make_user, open_review

pytestmark = pytest.mark.django_db


def told(event: str, version) -> set[str]:
    rows = Notification.objects.filter(event=event, url=page_of(version))
    return set(rows.values_list("recipient__username", flat=True))


def page_of(version) -> str:
    return reverse("admin:submissions_pluginversion_change", args=[version.pk])


@pytest.fixture
def second_author(django_user_model, acme, platform_admin):
    user = make_user(django_user_model, "acme-author2")
    sub.organisation_add_member(organisation=acme, user=user, actor=platform_admin)
    return user


# -- one test per row ------------------------------------------------------------------


def test_changes_requested_tells_the_authors_with_the_reason(in_review, platform_admin, security, second_author):
    review.stage_pass(review=open_review(in_review, "eligibility"), actor=platform_admin)
    second_author.is_active = False  # only active members are told
    second_author.save()
    security_review = open_review(in_review, "security")
    assert security_review.assignee == security
    review.stage_request_changes(review=security_review, actor=security, reason="Declare the network host.")

    assert told("version.changes_requested", in_review) == {"acme-author"}
    notice = Notification.objects.get(event="version.changes_requested")
    assert "Declare the network host." in notice.body
    assert notice.subject == f"Changes requested on {in_review}"


def test_awaiting_decision_tells_the_board_and_not_the_submitting_organisation(
    make_awaiting, board, board2, acme, author
):
    board2.groups.add(acme.group)  # a board member from the submitting organisation may not decide it
    version = make_awaiting("1.0.0")
    assert version.status == "awaiting_decision"
    assert told("version.awaiting_decision", version) == {"board"}


def test_approval_tells_the_authors_and_the_reviewers_who_worked_it(make_awaiting, board, second_author):
    version = make_awaiting("1.0.0")
    approve(version=version, actor=board, reason="Low risk.")
    worked = {"platform", "security", "performance", "compliance"}  # platform held eligibility (it passed itself)
    assert told("version.approved", version) == {"acme-author", "acme-author2", *worked}
    assert "Low risk." in Notification.objects.filter(event="version.approved").first().body


def test_auto_approval_tells_the_authors_and_the_reviewers_who_worked_it(settings, tmp_path, make_awaiting):
    from tests.decisions.test_policies import load, policy_yaml

    settings.WARDEN_AUTO_APPROVE_CATEGORIES = ["data-connector"]
    load(tmp_path, critical=policy_yaml("no-critical", "findings.open.critical == 0"))
    version = make_awaiting("1.0.0")
    version.refresh_from_db()
    assert version.status == "approved"
    assert told("version.approved", version) == {"acme-author", "platform", "security", "performance", "compliance"}
    assert "Auto-approved" in Notification.objects.get(event="version.approved", recipient__username="security").body


def test_board_rejection_tells_the_authors_and_the_reviewers_who_worked_it(make_awaiting, board):
    version = make_awaiting("1.0.0")
    approval.version_reject(version=version, actor=board, reason="Too much access.")
    assert told("version.rejected", version) == {"acme-author", "platform", "security", "performance", "compliance"}
    assert "Too much access." in Notification.objects.filter(event="version.rejected").first().body


def test_a_failed_blocking_stage_tells_the_authors_and_the_reviewers_who_worked_it(
    in_review, platform_admin, security, performance
):
    review.stage_pass(review=open_review(in_review, "eligibility"), actor=platform_admin)
    assert open_review(in_review, "performance").assignee == performance
    review.stage_fail(review=open_review(in_review, "security"), actor=security, reason="Remote code execution.")
    in_review.refresh_from_db()
    assert in_review.status == "rejected"
    assert told("version.rejected", in_review) == {"acme-author", "platform", "performance"}
    body = Notification.objects.get(event="version.rejected", recipient__username="acme-author").body
    assert "Security review" in body and "Remote code execution." in body


def test_roll_back_tells_the_authors_the_reviewers_who_worked_it_and_the_board(
    make_approved, platform_admin, board2, environment
):
    version = make_approved("1.0.0")
    deployment.version_deploy(version=version, environment=environment, actor=platform_admin)
    deployment.version_roll_back(
        version=version, environment=environment, actor=platform_admin, reason="Crashes the host (INC-42)."
    )
    assert told("version.rolled_back", version) == {
        "acme-author",
        "security",
        "performance",
        "compliance",
        "board",
        "board2",  # on the board, though it did not decide this version
    }
    assert "INC-42" in Notification.objects.filter(event="version.rolled_back").first().body


def test_revocation_tells_the_authors_and_the_reviewers_who_worked_it(make_approved, board2):
    version = make_approved("1.0.0")
    deployment.version_revoke(version=version, actor=board2, reason="Advisory GHSA-1.")
    assert told("version.revoked", version) == {
        "acme-author",
        "platform",
        "security",
        "performance",
        "compliance",
        "board",
    }


def test_an_errored_check_tells_the_assignee_or_else_the_stage_group(
    in_review, monkeypatch, pipeline, platform_admin, security, security2, django_capture_on_commit_callbacks
):
    def crash(ctx):
        raise RuntimeError("tool crashed")

    monkeypatch.setitem(REGISTRY, "test.crash", CheckSpec(key="test.crash", title="crash", tool="test", run=crash))
    pipeline["security"].checks = ["test.crash"]
    pipeline["security"].save()
    with django_capture_on_commit_callbacks(execute=False):  # the worker has not run it yet
        review.stage_pass(review=open_review(in_review, "eligibility"), actor=platform_admin)
    security_review = open_review(in_review, "security")
    holder = security_review.assignee
    run = in_review.check_runs.get(check_key="test.crash")

    check_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == RunStatus.ERRORED
    assert told("check.errored", in_review) == {holder.username}
    assert "RuntimeError: tool crashed" in Notification.objects.get(event="check.errored").body

    Notification.objects.filter(event="check.errored").delete()
    review.stage_release(review=security_review, actor=holder)  # nobody holds it now: the group is told
    with django_capture_on_commit_callbacks(execute=False):
        review.check_run_rerun(run=run, actor=security)
    check_run_execute(run_id=run.pk)
    assert told("check.errored", in_review) == {"security", "security2"}


def test_a_check_of_a_closed_review_tells_nobody_and_one_of_no_stage_tells_the_platform_admins(
    in_review, monkeypatch, pipeline, platform_admin, author, django_capture_on_commit_callbacks
):
    def crash(ctx):
        raise RuntimeError("tool crashed")

    monkeypatch.setitem(REGISTRY, "test.crash", CheckSpec(key="test.crash", title="crash", tool="test", run=crash))
    pipeline["security"].checks = ["test.crash"]
    pipeline["security"].save()
    with django_capture_on_commit_callbacks(execute=False):
        review.stage_pass(review=open_review(in_review, "eligibility"), actor=platform_admin)
    sub.version_withdraw(version=in_review, actor=author, reason="Not ready.")
    run = in_review.check_runs.get(check_key="test.crash")
    check_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == RunStatus.ERRORED and "closed" in run.error
    assert not Notification.objects.filter(event="check.errored").exists()

    stageless = CheckRun.objects.create(version=in_review, check_key="test.crash", tool="osv")  # as a re-match is
    check_run_execute(run_id=stageless.pk)
    stageless.refresh_from_db()
    assert stageless.status == RunStatus.ERRORED
    assert told("check.errored", in_review) == {"platform"}


# -- the actor, the channels ------------------------------------------------------------


def test_the_actor_is_not_told_about_their_own_action(make_approved, board):
    version = make_approved("1.0.0")  # the board approved it, so it is a reviewer who worked it
    assert version.stage_reviews.filter(stage__kind="decision", decided_by=board).exists()
    assert "board" not in told("version.approved", version)  # not told of its own approval
    deployment.version_revoke(version=version, actor=board, reason="Advisory GHSA-1.")
    assert "board" not in told("version.revoked", version)
    assert "acme-author" in told("version.revoked", version)


def test_preferences_choose_the_channels(make_awaiting, board, author):
    NotificationPreference.objects.create(user=board, event="version.awaiting_decision", in_admin=False, email=True)
    NotificationPreference.objects.create(user=author, event="version.rejected", in_admin=True, email=False)
    version = make_awaiting("1.0.0")
    to_board = Notification.objects.get(event="version.awaiting_decision", recipient=board)
    assert to_board.email and to_board.read_at is not None  # by e-mail only: nothing shown in the admin
    approval.version_reject(version=version, actor=board, reason="No.")
    to_author = Notification.objects.get(event="version.rejected", recipient=author)
    assert not to_author.email and to_author.read_at is None  # in the admin only

    mail.outbox.clear()
    notifications_send()
    mailed = {(m.to[0], m.subject) for m in mail.outbox}
    assert ("board@example.com", f"{version} awaits the board's decision") in mailed
    assert ("security@example.com", f"{version} was rejected") in mailed
    assert not any(to == "acme-author@example.com" and "rejected" in subject for to, subject in mailed)


# -- the admin: header count, home list, reading marks read ------------------------------


def test_the_header_counts_unread_notifications_on_every_admin_page(
    client, in_review, platform_admin, security, author
):
    review.stage_pass(review=open_review(in_review, "eligibility"), actor=platform_admin)
    review.stage_request_changes(review=open_review(in_review, "security"), actor=security, reason="Fix it.")
    client.force_login(author)
    unread = Notification.objects.filter(recipient=author, read_at__isnull=True).count()
    assert unread >= 1
    for url in (reverse("admin:index"), reverse("admin:submissions_pluginversion_changelist"), page_of(in_review)):
        page = client.get(url).content.decode()
        assert 'id="warden-notifications"' in page, url
        assert f'<strong class="warden-unread">({unread})</strong>' in page, url


def test_the_home_lists_unread_notifications_and_opening_one_marks_it_read(
    client, in_review, platform_admin, security, author
):
    review.stage_pass(review=open_review(in_review, "eligibility"), actor=platform_admin)
    review.stage_request_changes(review=open_review(in_review, "security"), actor=security, reason="Fix it.")
    notice = Notification.objects.get(event="version.changes_requested", recipient=author)
    client.force_login(author)
    home = client.get(reverse("admin:index"))
    assert notice in home.context["unread_notifications"]
    opener = reverse("admin:governance_notification_open", args=[notice.pk])
    assert f'href="{opener}"' in home.content.decode()

    response = client.get(opener)
    assert response.status_code == 302 and response.url == page_of(in_review)
    notice.refresh_from_db()
    assert notice.read_at is not None
    assert notice not in client.get(reverse("admin:index")).context["unread_notifications"]

    client.force_login(security)  # someone else's notification is not theirs to open
    assert client.get(opener).status_code == 404


def test_the_boards_home_lists_the_versions_awaiting_its_decision(client, make_awaiting, board, author, security):
    version = make_awaiting("1.0.0")
    client.force_login(board)
    home = client.get(reverse("admin:index"))
    assert list(home.context["awaiting_decision"]) == [version]
    dossier = reverse("admin:submissions_pluginversion_dossier", args=[version.pk])
    assert f'href="{dossier}"' in home.content.decode()  # every home row opens the dossier
    for who in (author, security):  # not on the board: nothing awaits them
        client.force_login(who)
        home = client.get(reverse("admin:index"))
        assert home.context["awaiting_decision"] == []
        assert 'id="awaiting-decision"' not in home.content.decode()
