"""Reads on stage reviews, filtered by what the user may see."""

from django.db.models import Q, QuerySet
from django.utils import timezone
from guardian.shortcuts import get_objects_for_user

from submissions.selectors import plugins_visible_to

from .models import OPEN, StageReview


def reviews_assigned_to_groups_of(*, user) -> QuerySet[StageReview]:
    """The stage reviews the user's groups hold the review permission on."""
    return get_objects_for_user(user, "reviews.review_stagereview", klass=StageReview, accept_global_perms=False)


def stage_reviews_visible_to(*, user) -> QuerySet[StageReview]:
    if user.has_perm("reviews.view_stagereview"):
        return StageReview.objects.all()
    return StageReview.objects.filter(
        Q(pk__in=reviews_assigned_to_groups_of(user=user).values("pk"))
        | Q(version__plugin__in=plugins_visible_to(user=user))
    )


def open_reviews_assigned_to(*, user) -> QuerySet[StageReview]:
    return (
        StageReview.objects.filter(assignee=user, status__in=OPEN)
        .select_related("stage", "version__plugin__organisation")
        .order_by("due_at")
    )


def overdue_reviews_visible_to(*, user) -> QuerySet[StageReview]:
    return (
        stage_reviews_visible_to(user=user)
        .filter(status__in=OPEN, due_at__lt=timezone.now())
        .select_related("stage", "assignee", "version__plugin__organisation")
        .order_by("due_at")
    )
