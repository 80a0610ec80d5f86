"""Reads on ratings, evaluations and exemptions, filtered by what the user may see."""

from dataclasses import dataclass, field
from datetime import datetime

from django.contrib.auth.models import User
from django.db.models import F, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce

from governance.models import AuditEvent, StageKind
from reviews.models import StageReview
from reviews.selectors import versions_awaiting_decision_of
from submissions.models import PluginVersion
from submissions.selectors import plugins_visible_to, versions_visible_to

from .models import (
    Decision,
    Deployment,
    Exemption,
    ExemptionScope,
    ExemptionStatus,
    PolicyEvaluation,
    RetroHuntFlag,
    RiskRating,
)

DECISIONS = ("version.approve", "version.auto_approve", "version.reject", "version.revoke")


def latest_rating(*, version: PluginVersion) -> RiskRating | None:
    return version.risk_ratings.select_related("rubric").order_by("-pk").first()


def latest_evaluation(*, version: PluginVersion) -> PolicyEvaluation | None:
    return version.policy_evaluations.order_by("-pk").first()


def ratings_visible_to(*, user: User) -> QuerySet[RiskRating]:
    return RiskRating.objects.filter(version__in=versions_visible_to(user=user))


def evaluations_visible_to(*, user: User) -> QuerySet[PolicyEvaluation]:
    return PolicyEvaluation.objects.filter(version__in=versions_visible_to(user=user))


def decisions_visible_to(*, user: User) -> QuerySet[Decision]:
    return Decision.objects.filter(version__in=versions_visible_to(user=user))


def exemptions_visible_to(*, user: User) -> QuerySet[Exemption]:
    """The board and platform admins (who see every version) see every exemption; anyone else
    those of the plugins they see, those covering a version they may see (a reviewer's
    assignment), and the ones they asked for."""
    if user.has_perm("submissions.view_pluginversion"):
        return Exemption.objects.all()
    versions = versions_visible_to(user=user)
    return Exemption.objects.filter(
        Q(plugin__in=plugins_visible_to(user=user))
        | Q(scope=ExemptionScope.VERSION, version__in=versions)
        | Q(scope=ExemptionScope.PLUGIN, plugin__in=versions.values("plugin_id"))
        | Q(requested_by=user)
    )


def risk_register() -> list[dict]:
    """Every decision and every exemption, oldest first, for auditors (a handful of queries)."""
    events = AuditEvent.objects.filter(object_type="submissions.pluginversion", action__in=DECISIONS).order_by("seq")
    versions = PluginVersion.objects.select_related("plugin__organisation").in_bulk([int(e.object_id) for e in events])
    ratings = _latest_by_version(RiskRating.objects.filter(version__in=versions).select_related("rubric"))
    evaluations = _latest_by_version(PolicyEvaluation.objects.filter(version__in=versions))
    rows = []
    for event in events:
        version = versions.get(int(event.object_id))
        rating, evaluation = ratings.get(int(event.object_id)), evaluations.get(int(event.object_id))
        rows.append(
            {
                "entry": event.action,
                "id": event.object_id,
                "plugin": str(version.plugin) if version else "",
                "version": event.object_repr,
                "status": event.to_state,
                "at": event.created_at.isoformat(),
                "by": event.actor_username,
                "reason": event.reason,
                "rating_total": str(rating.total) if rating else "",
                "rating_band": rating.band if rating else "",
                "rubric": str(rating.rubric) if rating else "",
                "policies_passed": evaluation.passed if evaluation else "",
            }
        )
    for exemption in Exemption.objects.select_related("plugin", "version", "requested_by", "approved_by").order_by(
        "requested_at", "pk"
    ):
        rows.append(
            {
                "entry": "exemption",
                "id": exemption.pk,
                "plugin": str(exemption.plugin),
                "version": str(exemption.version or ""),
                "status": exemption.status,
                "at": exemption.requested_at.isoformat(),
                "by": exemption.requested_by.get_username(),
                "reason": exemption.justification,
                "scope": exemption.scope,
                "covers": f"policy {exemption.policy_key}"
                if exemption.policy_key
                else f"finding {exemption.finding_fingerprint} {exemption.finding_title}",
                "requested_by": exemption.requested_by.get_username(),
                "approved_by": exemption.approved_by.get_username() if exemption.approved_by else "",
                "expires_at": exemption.expires_at.isoformat(),
                "compensating_controls": "; ".join(exemption.compensating_controls),
            }
        )
    return rows


def _latest_by_version(queryset: QuerySet) -> dict:
    latest = {}
    for row in queryset.order_by("pk"):
        latest[row.version_id] = row
    return latest


@dataclass
class Cover:
    """What the active exemptions of one version suppress: policy key or fingerprint -> exemption id."""

    policies: dict[str, int] = field(default_factory=dict)
    fingerprints: dict[str, int] = field(default_factory=dict)
    compensating_controls: list[str] = field(default_factory=list)


def active_exemptions(*, version: PluginVersion, now: datetime) -> QuerySet[Exemption]:
    return Exemption.objects.filter(
        Q(scope=ExemptionScope.PLUGIN) | Q(scope=ExemptionScope.VERSION, version=version),
        plugin_id=version.plugin_id,
        status=ExemptionStatus.APPROVED,
        expires_at__gt=now,
    ).order_by("pk")


def covering(*, version: PluginVersion, now: datetime) -> Cover:
    cover = Cover()
    controls: set[str] = set()
    for exemption in active_exemptions(version=version, now=now):
        if exemption.policy_key:
            cover.policies.setdefault(exemption.policy_key, exemption.pk)
        else:
            cover.fingerprints.setdefault(exemption.finding_fingerprint, exemption.pk)
        controls.update(exemption.compensating_controls)
    cover.compensating_controls = sorted(controls)
    return cover


def versions_awaiting_decision_rated(*, user: User) -> QuerySet[PluginVersion]:
    """For the board's home: reviews.selectors.versions_awaiting_decision_of with each
    version's latest rating (``rating_band``, ``rating_total``; what latest_rating returns)
    and ``awaiting_since``: when its decision stage started, else when it was submitted.
    Subqueries, so N versions are still one query."""
    latest = RiskRating.objects.filter(version=OuterRef("pk")).order_by("-pk")
    decision_started = StageReview.objects.filter(
        version=OuterRef("pk"), round=OuterRef("review_round"), stage__kind=StageKind.DECISION
    ).order_by("-pk")
    return versions_awaiting_decision_of(user=user).annotate(
        rating_band=Subquery(latest.values("band")[:1]),
        rating_total=Subquery(latest.values("total")[:1]),
        awaiting_since=Coalesce(Subquery(decision_started.values("started_at")[:1]), F("submitted_at")),
    )


def deployments_visible_to(*, user: User) -> QuerySet[Deployment]:
    """Where the versions ``user`` may see run (and ran)."""
    return Deployment.objects.filter(version__in=versions_visible_to(user=user))


def retro_flags_visible_to(*, user: User) -> QuerySet[RetroHuntFlag]:
    return RetroHuntFlag.objects.filter(version__in=versions_visible_to(user=user))
