"""Who reviews what: qualification- and workload-aware assignment.

A candidate for a review is an active member of the stage's group who holds a current
qualification for the stage (when it asks for one), is not from the submitting
organisation, and, by default, has not signed off another stage of the same version in
this round. Of those, the one with the least open work gets it: each open review counts
1, plus 1 per MiB of the version's archive (capped at 4 more), so one huge plugin weighs
like several small ones. Ties go to the reviewer who was assigned least recently.
"""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Max, Q
from django.urls import reverse
from django.utils import timezone

from governance.notifications import notify, notify_platform_admins
from governance.transitions import save_with_audit

from .models import OPEN, ReviewerQualification, ReviewStatus, StageReview

MIB = 1024 * 1024


def is_qualified(user, stage) -> bool:
    kind = stage.required_qualification
    return not kind or current_qualifications(kind).filter(reviewer=user).exists()


def current_qualifications(kind: str):
    """Unexpired qualifications whose training (when they rest on one) has not lapsed either."""
    today = timezone.localdate()
    return ReviewerQualification.objects.filter(stage_kind=kind).filter(
        Q(expires_on__isnull=True) | Q(expires_on__gte=today),
        Q(training__isnull=True) | Q(training__expires_on__isnull=True) | Q(training__expires_on__gte=today),
    )


def candidates(review: StageReview) -> list:
    """Everyone who may be given ``review``, in no particular order."""
    users = get_user_model().objects.filter(groups=review.stage.owner_group, is_active=True)
    users = users.exclude(groups=review.version.plugin.organisation.group)
    if review.version.submitted_by_id:
        users = users.exclude(pk=review.version.submitted_by_id)
    if review.stage.required_qualification:
        users = users.filter(pk__in=current_qualifications(review.stage.required_qualification).values("reviewer"))
    if settings.WARDEN_SEPARATE_SIGNOFFS:
        signed = StageReview.objects.filter(
            version_id=review.version_id,
            round=review.round,
            status__in=[ReviewStatus.PASSED, ReviewStatus.WAIVED],
            decided_by__isnull=False,  # a system pass signs nothing; and NOT IN (NULL) would exclude everyone
        ).exclude(pk=review.pk)
        users = users.exclude(pk__in=signed.values("decided_by"))
    return list(users.distinct())


def workloads(user_ids: list[int]) -> dict[int, float]:
    load = dict.fromkeys(user_ids, 0.0)
    for assignee_id, size in StageReview.objects.filter(assignee_id__in=user_ids, status__in=OPEN).values_list(
        "assignee_id", "version__size"
    ):
        load[assignee_id] += 1 + min(size / MIB, 4)
    return load


def assign_on_start(*, review: StageReview) -> None:
    """Inside the transaction that starts ``review``: give it to the least-loaded candidate,
    or record why nobody could take it and tell the platform admins."""
    people = candidates(review)
    if not people:
        review.unassigned_reason = f"No qualified reviewer in {review.stage.owner_group} can take it."
        save_with_audit(review, actor=None, action="stage.unassigned", reason=review.unassigned_reason)
        notify_platform_admins(
            event="stage.unassigned",
            subject=f"Nobody can review {review}",
            body=review.unassigned_reason,
            url=reverse("admin:reviews_stagereview_change", args=[review.pk]),
        )
        return
    load = workloads([u.pk for u in people])
    last = dict(StageReview.objects.filter(assignee__in=people).values_list("assignee").annotate(at=Max("started_at")))
    epoch = timezone.now().replace(year=1970)
    chosen = min(people, key=lambda u: (load[u.pk], last.get(u.pk) or epoch, u.pk))
    review.assignee, review.unassigned_reason = chosen, ""
    notify(
        recipients=[chosen],
        event="stage.assigned",
        subject=f"{review} is yours",
        body=f"Due {timezone.localtime(review.due_at):%Y-%m-%d %H:%M %Z}." if review.due_at else "",
        url=reverse("admin:reviews_stagereview_change", args=[review.pk]),
    )
    save_with_audit(
        review,
        actor=None,
        action="stage.assign",
        data={"assignee": chosen.get_username(), "workload": round(load[chosen.pk], 2)},
    )
