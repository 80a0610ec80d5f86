"""Annotations (threads of comments and proposed mitigations) and post-decision feedback."""

import re

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Q, QuerySet
from django.urls import reverse
from django.utils import timezone

from governance.audit import audit_record
from governance.errors import NotFound, PermissionRefused, TransitionRefused, ValidationFailed
from governance.notifications import notify
from governance.permissions import is_org_member
from governance.transitions import require_reason
from submissions.models import PluginVersion
from submissions.selectors import organisations_of, versions_visible_to

from .models import Annotation, AnnotationKind, Feedback, Finding, ReviewStatus, StageReview
from .selectors import threads_awaiting_author

MENTION = re.compile(r"(?<![\w@])@([\w.@+-]*[\w+-])")  # a trailing full stop ends the sentence, not the name


def can_see_version(user, version: PluginVersion) -> bool:
    return bool(user and user.is_active) and versions_visible_to(user=user).filter(pk=version.pk).exists()


def annotations_visible_to(*, user, version: PluginVersion) -> QuerySet[Annotation]:
    """Reviewers see every thread of a version they may see; its authors only the threads
    addressed to them."""
    if not can_see_version(user, version):
        return Annotation.objects.none()
    threads = Annotation.objects.filter(version=version).select_related("author", "parent")
    if is_org_member(user, version.plugin.organisation):
        return threads.filter(to_author=True) | threads.filter(parent__to_author=True)
    return threads


def annotations_visible_to_user(*, user) -> QuerySet[Annotation]:
    """All the annotations ``user`` may read, across versions, in one query."""
    own = organisations_of(user=user)
    return Annotation.objects.filter(version__in=versions_visible_to(user=user)).filter(
        ~Q(version__plugin__organisation__in=own) | Q(to_author=True) | Q(parent__to_author=True)
    )


def annotation_add(
    *,
    version: PluginVersion,
    actor,
    body: str,
    kind: str = AnnotationKind.COMMENT,
    stage_review: StageReview | None = None,
    finding: Finding | None = None,
    assessment=None,
    parent: Annotation | None = None,
    to_author: bool = False,
) -> Annotation:
    body = require_reason(body, action="annotate")
    if kind not in AnnotationKind.values:
        raise ValidationFailed(f"{kind!r} is not an annotation kind.", code="invalid_kind")
    if parent is not None:  # a reply lives where its thread lives; read the thread fresh
        parent = Annotation.objects.select_related(
            "version__plugin", "stage_review", "finding", "assessment__stage_review"
        ).get(pk=parent.pk)
        version, stage_review, finding = parent.version, parent.stage_review, parent.finding
        assessment = parent.assessment
        to_author = parent.to_author
    if not can_see_version(actor, version):  # as for a missing version: never name one the actor may not see
        raise NotFound("No such version.")
    if parent is not None and parent.parent_id:
        raise ValidationFailed("Reply to the thread's first annotation.", code="nested_reply")
    if parent is not None and parent.resolved_at:
        raise TransitionRefused("The thread is resolved; start a new one.")
    for target in (stage_review, finding, assessment and assessment.stage_review):
        if target is not None and target.version_id != version.pk:
            raise ValidationFailed(
                "That review, finding or control does not belong to this version.", code="wrong_version"
            )
    if is_org_member(actor, version.plugin.organisation) and not (parent is not None and to_author):
        raise PermissionRefused(f"{actor} may not annotate {version} except in threads addressed to them.")
    mentioned = _mentioned(body, version, to_author)
    with transaction.atomic():
        annotation = Annotation.objects.create(
            version=version,
            stage_review=stage_review,
            finding=finding,
            assessment=assessment,
            parent=parent,
            author=actor,
            kind=kind,
            body=body,
            to_author=to_author,
        )
        annotation.mentions.set(mentioned)
        audit_record(
            actor=actor,
            action="annotation.add",
            target=version,
            data={"annotation": annotation.pk, "kind": kind, "to_author": to_author},
        )
        url = reverse("admin:reviews_annotation_change", args=[annotation.pk])
        notify(
            recipients=[u for u in mentioned if u != actor],
            event="annotation.mention",
            subject=f"{actor} mentioned you about {version}",
            body=body,
            url=url,
        )
        if to_author and parent is None:
            members = get_user_model().objects.filter(groups=version.plugin.organisation.group, is_active=True)
            notify(
                recipients=list(members),
                event="annotation.to_author",
                subject=f"The reviewers of {version} wrote to you",
                body=body,
                url=url,
            )
    return annotation


def annotation_resolve(*, annotation: Annotation, actor) -> Annotation:
    with transaction.atomic(durable=True):
        annotation = Annotation.objects.select_for_update().select_related("version__plugin").get(pk=annotation.pk)
        if annotation.parent_id:
            raise ValidationFailed("Resolve the thread, not a reply.", code="not_a_thread")
        if annotation.resolved_at:
            raise TransitionRefused("The thread is already resolved.")
        if not can_see_version(actor, annotation.version) or is_org_member(
            actor, annotation.version.plugin.organisation
        ):
            raise PermissionRefused(f"{actor} may not resolve threads on {annotation.version}.")
        annotation.resolved_at, annotation.resolved_by = timezone.now(), actor
        annotation.save(update_fields=["resolved_at", "resolved_by"])
        audit_record(
            actor=actor, action="annotation.resolve", target=annotation.version, data={"annotation": annotation.pk}
        )
    return annotation


def _mentioned(body: str, version: PluginVersion, to_author: bool) -> list:
    handles = set(MENTION.findall(body))
    if not handles:
        return []
    users = {u.get_username(): u for u in get_user_model().objects.filter(username__in=handles, is_active=True)}
    for handle in sorted(handles):
        user = users.get(handle)
        authors_may = to_author and user is not None and is_org_member(user, version.plugin.organisation)
        if user is None or not (
            authors_may or (can_see_version(user, version) and not is_org_member(user, version.plugin.organisation))
        ):
            raise ValidationFailed(
                f"@{handle} cannot see this thread.",
                code="invalid_mention",
                errors=[{"field": "body", "code": "invalid_mention", "message": f"@{handle}"}],
            )
    return list(users.values())


# -- feedback ------------------------------------------------------------------------------


def feedback_request(*, version: PluginVersion) -> list[Feedback]:
    """Inside the decision's transaction: ask the submitter and everyone who decided a
    stage of the version to rate the process."""
    people: dict[int, tuple] = {}
    if version.submitted_by_id:
        people[version.submitted_by_id] = (version.submitted_by, "author")
    for review in (
        StageReview.objects.filter(version=version, decided_by__isnull=False)
        .exclude(status=ReviewStatus.CANCELLED)
        .select_related("decided_by")
    ):
        if review.decided_by is not None:
            people.setdefault(review.decided_by.pk, (review.decided_by, "reviewer"))
    rows = [Feedback(version=version, user=user, role=role) for user, role in people.values()]
    Feedback.objects.bulk_create(rows, ignore_conflicts=True)
    notify(
        recipients=[user for user, _role in people.values()],
        event="feedback.requested",
        subject=f"How did the review of {version} go?",
        body="Rate the process from 1 to 5 in Warden.",
        url=reverse("admin:reviews_feedback_changelist"),
    )
    return rows


def feedback_submit(*, feedback: Feedback, actor, rating: int, comment: str = "") -> Feedback:
    if isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= 5:
        raise ValidationFailed(
            "Rate from 1 to 5.",
            code="invalid_rating",
            errors=[{"field": "rating", "code": "invalid_rating", "message": "1 to 5."}],
        )
    # not durable: the admin's add/change form calls it inside the transaction Django opens
    with transaction.atomic():
        feedback = Feedback.objects.select_for_update().get(pk=feedback.pk)
        if feedback.user_id != actor.pk:
            raise PermissionRefused("This feedback was asked of someone else.")
        if feedback.answered_at:
            raise TransitionRefused("You already gave feedback on this version.")
        feedback.rating, feedback.comment, feedback.answered_at = rating, comment.strip(), timezone.now()
        feedback.save(update_fields=["rating", "comment", "answered_at"])
    return feedback


def answers_add(*, version: PluginVersion, actor, replies: dict[int, str]) -> None:
    """Reply to open threads addressed to the authors, through the annotation service: the
    ``version_answered`` hook of a resubmission (reviews/apps.py)."""
    threads = threads_awaiting_author(version=version).in_bulk(list(replies))
    for pk, body in sorted(replies.items()):
        field = f"answers[{pk}]"
        if pk not in threads:
            raise ValidationFailed(
                f"No open thread {pk} addressed to the authors of {version}.",
                code="unknown_thread",
                errors=[{"field": field, "code": "unknown_thread", "message": "Not an open thread addressed to you."}],
            )
        try:
            annotation_add(version=version, actor=actor, body=body, parent=threads[pk])
        except ValidationFailed as exc:
            raise ValidationFailed(
                exc.detail, code=exc.code, errors=[{**e, "field": field} for e in exc.errors]
            ) from None
