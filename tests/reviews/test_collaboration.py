"""Annotations (who sees and may write what) and feedback after a decision."""

import pytest

from governance.errors import NotFound, PermissionRefused, TransitionRefused, ValidationFailed
from governance.models import Notification
from reviews import services as review
from reviews.collaboration import (
    annotation_add,
    annotation_resolve,
    annotations_visible_to,
    feedback_submit,
)
from reviews.models import Feedback
from tests.conftest import open_review

pytestmark = pytest.mark.django_db


def test_reviewers_discuss_internally_and_mention_each_other(in_review, security, compliance, author):
    thread = annotation_add(
        version=in_review,
        actor=security,
        body="@compliance is the retention period right?",
        kind="mitigation",
        stage_review=open_review(in_review, "eligibility"),
    )
    assert list(thread.mentions.all()) == [compliance]
    told = Notification.objects.get(event="annotation.mention")
    assert told.recipient == compliance and "security mentioned you" in told.subject
    reply = annotation_add(version=in_review, actor=compliance, body="Yes: 30 days.", parent=thread)
    assert list(annotations_visible_to(user=compliance, version=in_review)) == [thread, reply]
    assert list(annotations_visible_to(user=author, version=in_review)) == []  # internal


def test_authors_see_and_answer_only_what_is_addressed_to_them(in_review, security, author, other_author):
    internal = annotation_add(version=in_review, actor=security, body="Looks like telemetry to me.")
    asked = annotation_add(version=in_review, actor=security, body="Why does it read ACME_TOKEN?", to_author=True)
    assert Notification.objects.get(event="annotation.to_author").recipient == author
    answer = annotation_add(version=in_review, actor=author, body="To call the export API.", parent=asked)
    assert list(annotations_visible_to(user=author, version=in_review)) == [asked, answer]
    with pytest.raises(PermissionRefused, match="except in threads addressed to them"):
        annotation_add(version=in_review, actor=author, body="Hello", parent=internal)
    with pytest.raises(PermissionRefused, match="except in threads addressed to them"):
        annotation_add(version=in_review, actor=author, body="A thread of my own")
    with pytest.raises(NotFound):  # another vendor: as for a missing version (tests/test_existence_oracles.py)
        annotation_add(version=in_review, actor=other_author, body="Hi", parent=asked)
    assert list(annotations_visible_to(user=other_author, version=in_review)) == []


def test_mentions_must_be_able_to_see_the_thread(in_review, security, author, other_author):
    with pytest.raises(ValidationFailed, match="@globex-author cannot see this thread"):
        annotation_add(version=in_review, actor=security, body="cc @globex-author")
    with pytest.raises(ValidationFailed, match="@acme-author cannot see this thread"):
        annotation_add(version=in_review, actor=security, body="cc @acme-author")  # internal thread
    annotation_add(version=in_review, actor=security, body="@acme-author please answer", to_author=True)


def test_resolving_a_thread(in_review, security, author):
    thread = annotation_add(version=in_review, actor=security, body="Question", to_author=True)
    with pytest.raises(PermissionRefused):
        annotation_resolve(annotation=thread, actor=author)
    annotation_resolve(annotation=thread, actor=security)
    with pytest.raises(TransitionRefused, match="already resolved"):
        annotation_resolve(annotation=thread, actor=security)
    with pytest.raises(TransitionRefused, match="start a new one"):
        annotation_add(version=in_review, actor=security, body="More", parent=thread)


def test_feedback_is_asked_after_the_decision_and_answered_once(
    make_approved, author, security, performance, compliance, board, platform_admin, outsider
):
    version = make_approved("1.0.0")
    asked = {f.user.username: f.role for f in Feedback.objects.filter(version=version)}
    assert asked == {
        "acme-author": "author",
        "platform": "reviewer",
        "security": "reviewer",
        "performance": "reviewer",
        "compliance": "reviewer",
        "board": "reviewer",
    }
    assert Notification.objects.filter(event="feedback.requested").count() == 6
    mine = Feedback.objects.get(version=version, user=author)
    with pytest.raises(ValidationFailed, match="Rate from 1 to 5"):
        feedback_submit(feedback=mine, actor=author, rating=6)
    with pytest.raises(PermissionRefused):
        feedback_submit(feedback=mine, actor=outsider, rating=4)
    feedback_submit(feedback=mine, actor=author, rating=4, comment="  Quick and clear.  ")
    mine.refresh_from_db()
    assert (mine.rating, mine.comment) == (4, "Quick and clear.")
    with pytest.raises(TransitionRefused, match="already gave feedback"):
        feedback_submit(feedback=mine, actor=author, rating=5)


def test_a_blocking_failure_also_asks_for_feedback(in_review, platform_admin, security, author):
    review.stage_pass(review=open_review(in_review, "eligibility"), actor=platform_admin)
    review.stage_fail(review=open_review(in_review, "security"), actor=security, reason="Exfiltrates data.")
    assert set(Feedback.objects.filter(version=in_review).values_list("user__username", flat=True)) == {
        "acme-author",
        "platform",
        "security",
    }


def test_annotations_and_feedback_in_the_admin(client, in_review, security, author, make_approved):
    from django.urls import reverse

    thread = annotation_add(version=in_review, actor=security, body="Internal note")
    client.force_login(author)
    assert client.get(reverse("admin:reviews_annotation_changelist")).context["cl"].result_count == 0
    assert client.get(reverse("admin:reviews_annotation_change", args=[thread.pk])).status_code == 404
    version = make_approved("2.0.0")
    feedback = Feedback.objects.get(version=version, user=author)
    url = reverse("admin:reviews_feedback_change", args=[feedback.pk])
    assert client.post(url, {"rating": "5", "comment": "Great"}).status_code == 302
    feedback.refresh_from_db()
    assert (feedback.rating, feedback.answered_at is not None) == (5, True)
    client.force_login(security)
    response = client.get(reverse("admin:reviews_feedback_changelist"))
    assert [f.user for f in response.context["cl"].result_list] == [security]


def test_the_annotation_list_runs_a_constant_number_of_queries(client, in_review, security, author):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse

    url = reverse("admin:reviews_annotation_changelist")
    client.force_login(author)
    counts = []
    for total in (1, 5):
        while in_review.annotations.count() < total:
            annotation_add(version=in_review, actor=security, body="Please explain.", to_author=True)
        client.get(url)
        with CaptureQueriesContext(connection) as queries:
            page = client.get(url)
        assert page.context["cl"].result_count == total
        counts.append(len(queries))
    assert counts[0] == counts[1]


def test_a_mention_at_the_end_of_a_sentence(in_review, security, compliance):
    thread = annotation_add(version=in_review, actor=security, body="Please check, @compliance.")
    assert list(thread.mentions.all()) == [compliance]
