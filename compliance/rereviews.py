"""Ongoing conformity: re-reviews of deployed versions on a schedule and on expiring evidence."""

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from governance import roles
from governance.audit import audit_record
from governance.errors import PermissionRefused, TransitionRefused
from governance.notifications import notify
from governance.transitions import require_reason
from submissions.models import PluginVersion, VersionStatus

from .models import Checklist, Evidence, EvidenceStatus, ReReview, ReReviewStatus

DEFAULT_INTERVAL_DAYS = 365


def interval_days(version: PluginVersion) -> int:
    """The shortest re-review interval of the checklists that apply to the version."""
    category = version.manifest.get("plugin", {}).get("category", "")
    days = [c.re_review_days for c in Checklist.objects.all() if not c.categories or category in c.categories]
    return min(days, default=DEFAULT_INTERVAL_DAYS)


def re_review_schedule(*, version: PluginVersion, reason: str = "Periodic re-review") -> ReReview | None:
    """Inside the deployment's transaction (or after a completed re-review): the next one.
    Only a deployed version is re-reviewed; for any other nothing is scheduled."""
    if version.status != VersionStatus.DEPLOYED:
        return None
    ReReview.objects.filter(version=version, status=ReReviewStatus.SCHEDULED).delete()  # one pending at a time
    due = timezone.localdate() + timedelta(days=interval_days(version))
    return ReReview.objects.create(version=version, due_on=due, reason=reason)


def re_reviews_open_due() -> int:
    """Scheduled task: open what is due, and open early where accepted evidence expired."""
    today = timezone.localdate()
    opened = 0
    for re_review in ReReview.objects.filter(status=ReReviewStatus.SCHEDULED, due_on__lte=today).select_related(
        "version__plugin"
    ):
        if re_review.version.status != VersionStatus.DEPLOYED:  # scheduled before undeploying closed them
            re_reviews_close(version=re_review.version, reason=re_review.version.get_status_display().lower())
            continue
        opened += _open(re_review)
    deployed = PluginVersion.objects.filter(status=VersionStatus.DEPLOYED)
    expired = Evidence.objects.filter(
        version__in=deployed, status=EvidenceStatus.ACCEPTED, expires_on__lt=today, next__isnull=True
    ).select_related("version__plugin")
    for evidence in expired:
        if not ReReview.objects.filter(version=evidence.version, status=ReReviewStatus.OPEN).exists():
            early = ReReview.objects.create(
                version=evidence.version, due_on=today, reason=f"Evidence expired on {evidence.expires_on}: {evidence}"
            )
            opened += _open(early)
    return opened


def re_reviews_close(*, version: PluginVersion, reason: str) -> int:
    """Inside the transaction that takes the version out of deployment (superseded, rolled
    back, revoked): its scheduled and open re-reviews are closed, unreviewed, with why."""
    closed = 0
    with transaction.atomic():
        pending = ReReview.objects.select_for_update().filter(
            version=version, status__in=[ReReviewStatus.SCHEDULED, ReReviewStatus.OPEN]
        )
        for re_review in pending:
            re_review.close()
            re_review.completed_at = timezone.now()
            re_review.outcome = f"Closed without review: {version} is no longer deployed ({reason})."
            re_review.save()
            audit_record(
                actor=None,
                action="compliance.re_review_closed",
                target=re_review,
                reason=re_review.outcome,
                data={"version": version.pk},
            )
            closed += 1
    return closed


def _open(re_review: ReReview) -> int:
    with transaction.atomic():
        claimed = ReReview.objects.select_for_update().filter(pk=re_review.pk, status=ReReviewStatus.SCHEDULED).first()
        if claimed is None:
            return 0
        claimed.open()
        claimed.opened_at = timezone.now()
        claimed.save()
        officers = get_user_model().objects.filter(groups__name=roles.COMPLIANCE_OFFICERS, is_active=True)
        notify(
            recipients=list(officers),
            event="compliance.re_review",
            subject=f"Re-review {re_review.version}",
            body=re_review.reason,
            url=reverse("admin:compliance_rereview_change", args=[re_review.pk]),
        )
        audit_record(
            actor=None,
            action="compliance.re_review_open",
            target=re_review.version,
            reason=re_review.reason,
            data={"re_review": re_review.pk},
        )
    return 1


def re_review_complete(*, re_review: ReReview, actor, outcome: str) -> ReReview:
    outcome = require_reason(outcome, action="complete a re-review")
    with transaction.atomic(durable=True):
        re_review = ReReview.objects.select_for_update().select_related("version__plugin").get(pk=re_review.pk)
        if re_review.status != ReReviewStatus.OPEN:
            raise TransitionRefused(f"{re_review} is {re_review.get_status_display().lower()}, not open.")
        if not actor.groups.filter(name=roles.COMPLIANCE_OFFICERS).exists():
            raise PermissionRefused(f"{actor} is not a compliance officer.")
        re_review.complete()
        re_review.completed_at, re_review.completed_by, re_review.outcome = timezone.now(), actor, outcome
        re_review._history_user = actor  # type: ignore[attr-defined]
        re_review.save()
        audit_record(actor=actor, action="compliance.re_review_done", target=re_review.version, reason=outcome)
        re_review_schedule(version=re_review.version)  # the next one, if it is still deployed
    return re_review
