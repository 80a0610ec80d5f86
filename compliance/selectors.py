"""Reads on assessments, evidence and re-reviews, filtered by what the user may see."""

from django.contrib.auth.models import User
from django.db.models import QuerySet

from reviews.selectors import stage_reviews_visible_to
from submissions.selectors import versions_visible_to

from .models import ControlAssessment, Evidence, ReReview


def assessments_visible_to(*, user: User) -> QuerySet[ControlAssessment]:
    """An assessment is part of its compliance review: whoever may see that review (its
    officers, the vendor, the board and platform admins), not every reviewer of the version."""
    return ControlAssessment.objects.filter(stage_review__in=stage_reviews_visible_to(user=user))


def evidence_visible_to(*, user: User) -> QuerySet[Evidence]:
    return Evidence.objects.filter(version__in=versions_visible_to(user=user))


def re_reviews_visible_to(*, user: User) -> QuerySet[ReReview]:
    return ReReview.objects.filter(version__in=versions_visible_to(user=user))
