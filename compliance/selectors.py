"""Reads on assessments, evidence and re-reviews, filtered by what the user may see."""

from django.contrib.auth.models import User
from django.db.models import Count, F, IntegerField, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce

from governance.models import StageKind
from reviews.models import OPEN, Annotation
from reviews.selectors import stage_reviews_visible_to
from submissions.models import PluginVersion, VersionStatus
from submissions.selectors import organisations_of, versions_visible_to

from .models import AssessmentStatus, ControlAssessment, Evidence, EvidenceStatus, ReReview


def assessments_visible_to(*, user: User) -> QuerySet[ControlAssessment]:
    """An assessment is part of its compliance review: whoever may see that review (its
    officers, the vendor, the board and platform admins), not every reviewer of the version."""
    return ControlAssessment.objects.filter(stage_review__in=stage_reviews_visible_to(user=user))


def evidence_visible_to(*, user: User) -> QuerySet[Evidence]:
    return Evidence.objects.filter(version__in=versions_visible_to(user=user))


def re_reviews_visible_to(*, user: User) -> QuerySet[ReReview]:
    return ReReview.objects.filter(version__in=versions_visible_to(user=user))


# A version in one of these has nothing left for its authors to answer.
CLOSED = [
    VersionStatus.REJECTED,
    VersionStatus.WITHDRAWN,
    VersionStatus.REVOKED,
    VersionStatus.ROLLED_BACK,
    VersionStatus.SUPERSEDED,
]


def _count_per_version(queryset: QuerySet, version: str = "version") -> Coalesce:
    """``queryset`` counted for each outer version (``version``: the path to it), as a
    subquery: no join multiplies the rows of another count."""
    counted = queryset.filter(**{version: OuterRef("pk")}).order_by().values(version)
    counted = counted.annotate(n=Count("pk", distinct=True)).values("n")[:1]
    return Coalesce(Subquery(counted), Value(0), output_field=IntegerField())


def versions_waiting_on_author(*, user: User) -> QuerySet[PluginVersion]:
    """For an author's home: the versions of the user's organisations that wait on them, with
    why: changes requested; ``open_threads`` the reviewers addressed to the authors
    (reviews.selectors.threads_awaiting_author); ``evidence_requested``, the controls of an
    open compliance review that need evidence and have none yet (to do, not decided by an
    expression); ``evidence_rejected``, evidence whose latest revision the officer rejected
    while the review is open."""
    compliance_open = Q(stage_review__stage__kind=StageKind.COMPLIANCE, stage_review__status__in=OPEN)
    threads = Annotation.objects.filter(parent__isnull=True, to_author=True, resolved_at__isnull=True)
    requested = ControlAssessment.objects.filter(compliance_open, status=AssessmentStatus.TODO, automatic=False)
    rejected = Evidence.objects.filter(
        status=EvidenceStatus.REJECTED,
        next__isnull=True,
        version__stage_reviews__stage__kind=StageKind.COMPLIANCE,
        version__stage_reviews__status__in=OPEN,
    )
    return (
        PluginVersion.objects.filter(plugin__organisation__in=organisations_of(user=user))
        .exclude(status__in=CLOSED)
        .annotate(
            open_threads=_count_per_version(threads),
            evidence_requested=_count_per_version(requested, "stage_review__version"),
            evidence_rejected=_count_per_version(rejected),
        )
        .filter(
            Q(status=VersionStatus.CHANGES_REQUESTED)
            | Q(open_threads__gt=0)
            | Q(evidence_requested__gt=0)
            | Q(evidence_rejected__gt=0)
        )
        .select_related("plugin__organisation")
        .order_by(F("submitted_at").asc(nulls_last=True), "pk")
    )
