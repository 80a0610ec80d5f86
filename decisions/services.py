"""Rating versions and evaluating policies: on transitions, on demand, for the CI gate.

``assess_facts`` is the pure core (what the benchmark times): policies that do not read the
rating run first, their violations feed the rating, then the policies that read ``rating``
run. ``version_assess`` stores the outcome inside the caller's transaction (the version row
locked), ``gate_verdict`` computes it without storing anything.
"""

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone
from django_q.tasks import async_task

from decisions.policies import CompiledPolicy, PreparedFacts, current_policies, evaluate
from governance.audit import audit_record
from governance.errors import FactsChanged, PermissionRefused, PolicyBlocked, ValidationFailed
from submissions.models import PluginVersion

from .facts import unfinished_checks, version_facts
from .models import Decision, PolicyEvaluation, RiskRating, RiskRubric
from .rubric import SEVERITIES, Rating, digest_of, rate
from .rubric_versions import rubric_current, rubric_document, rubric_label

UNRATED = {"computed": False, "total": 0.0, "band": ""}


@dataclass(frozen=True)
class Assessment:
    facts: dict  # what the rating read (``policies`` included, ``rating`` not)
    rating: Rating
    results: list[dict]

    @property
    def passed(self) -> bool:
        return not any(row["blocks"] for row in self.results)

    @property
    def blocking(self) -> list[dict]:
        return [row for row in self.results if row["blocks"]]


def assess_facts(
    *, facts: dict, rubric: dict, rubric_label: str, policies: list[CompiledPolicy], exempt: dict[str, int]
) -> Assessment:
    prepared = PreparedFacts({**facts, "rating": UNRATED})
    unfinished = unfinished_checks(facts["checks"])
    rows = evaluate([p for p in policies if not p.reads_rating], prepared, exempt, unfinished)
    counted = [r for r in rows if r["outcome"] in ("violation", "error")]
    facts = {
        **facts,
        "policies": {
            "violated": {s: sorted(r["key"] for r in counted if r["severity"] == s) for s in SEVERITIES},
            "exempted": sorted(r["key"] for r in rows if r["outcome"] == "exempted"),
        },
    }
    rating = rate(facts=facts, rubric=rubric, rubric_label=rubric_label)
    later = [p for p in policies if p.reads_rating]
    if later:
        prepared.set("rating", {"computed": True, "total": float(rating.total), "band": rating.band})
        rows += evaluate(later, prepared, exempt, unfinished)
    return Assessment(facts=facts, rating=rating, results=sorted(rows, key=lambda r: r["key"]))


# -- rubrics -----------------------------------------------------------------------------


def assess_version(
    *, version: PluginVersion, now: datetime | None = None, lock_rubric: bool = False
) -> tuple[Assessment, RiskRubric]:
    """Compute (not store) the rating and policy results of ``version`` now; ``lock_rubric``
    when the caller stores the rating in its transaction."""
    now = now or timezone.now()
    rubric = rubric_current(lock=lock_rubric)
    facts = version_facts(version=version, now=now)
    assessment = assess_facts(
        facts=facts,
        rubric=rubric_document(rubric),
        rubric_label=rubric_label(rubric),
        policies=current_policies(),
        exempt=facts["exemptions"]["policies"],
    )
    return assessment, rubric


@dataclass(frozen=True)
class StoredAssessment:
    assessment: Assessment
    rating: RiskRating
    evaluation: PolicyEvaluation


def version_assess(*, version: PluginVersion, trigger: str, actor: User | None = None) -> StoredAssessment:
    """Inside the caller's transaction, with ``version`` locked: rate it (a new rating only
    when the payload differs from its latest under the same rubric) and record the policy
    evaluation, each with an audit row. The rubric row stays locked until the caller commits."""
    assessment, rubric = assess_version(version=version, lock_rubric=True)
    rating = _store_rating(version, rubric, assessment, trigger, actor)
    evaluation = PolicyEvaluation.objects.create(
        version=version,
        rating=rating,
        trigger=trigger,
        passed=assessment.passed,
        results=assessment.results,
        digest=digest_of(assessment.results),
        created_by=_user(actor),
    )
    audit_record(
        actor=actor,
        action="policies.evaluate",
        target=evaluation,
        reason=trigger,
        data={
            "version": version.pk,
            "version_status": version.status,
            "passed": evaluation.passed,
            "violations": [
                f"{r['key']} v{r['version']} ({r['mode']})" for r in assessment.results if r["outcome"] != "pass"
            ],
        },
    )
    return StoredAssessment(assessment=assessment, rating=rating, evaluation=evaluation)


def _user(actor: User | None) -> User | None:
    return actor if getattr(actor, "pk", None) else None  # None: the system


def _store_rating(
    version: PluginVersion, rubric: RiskRubric, assessment: Assessment, trigger: str, actor: User | None
) -> RiskRating:
    latest = RiskRating.objects.filter(version=version, rubric=rubric).order_by("-pk").first()
    same_facts = latest is not None and digest_of(latest.facts) == digest_of(assessment.facts)
    if latest is not None and latest.digest == assessment.rating.digest and same_facts:
        return latest  # a rating row is its facts too: a decision on it was taken on them
    rating = RiskRating.objects.create(
        version=version,
        rubric=rubric,
        trigger=trigger,
        facts=assessment.facts,
        breakdown=assessment.rating.breakdown,
        total=assessment.rating.total,
        band=assessment.rating.band,
        summary=assessment.rating.summary,
        digest=assessment.rating.digest,
        created_by=_user(actor),
    )
    audit_record(
        actor=actor,
        action="rating.compute",
        target=rating,
        reason=trigger,
        data={"version": version.pk, "total": rating.total, "band": rating.band, "digest": rating.digest},
    )
    return rating


@dataclass(frozen=True)
class DecisionBasis:
    """What the board is shown and decides on: the latest policy evaluation and its rating."""

    rating: RiskRating | None
    evaluation: PolicyEvaluation | None

    @property
    def ids(self) -> dict:
        return {
            "rating_id": self.rating.pk if self.rating else None,
            "evaluation_id": self.evaluation.pk if self.evaluation else None,
        }


def decision_basis(*, version: PluginVersion) -> DecisionBasis:
    evaluation = version.policy_evaluations.select_related("rating__rubric").order_by("-pk").first()
    return DecisionBasis(rating=evaluation.rating if evaluation else None, evaluation=evaluation)


@dataclass(frozen=True)
class ApprovalJudgement:
    shown: DecisionBasis  # what the board named
    stored: StoredAssessment  # what holds now, recorded

    @property
    def stale(self) -> bool:
        """The facts changed since the shown rating (a rating row holds the facts it read, and
        one is stored whenever they differ, even where no factor weighs the change), or the
        policy results did."""
        assert self.shown.rating is not None and self.shown.evaluation is not None
        return (
            self.shown.rating.pk != self.stored.rating.pk
            or self.shown.evaluation.digest != self.stored.evaluation.digest
        )

    def refusal(self, version: PluginVersion) -> FactsChanged:
        shown, now = self.shown.rating, self.stored.rating
        assert shown is not None
        return FactsChanged(
            f"{version} was not approved: its facts changed since the rating you were shown "
            f"({shown.total}, {shown.band}) was computed. It is now rated {now.total} ({now.band}); "
            "compare the two on its decision page and decide again.",
            shown_rating_id=shown.pk,
            rating_id=now.pk,
            evaluation_id=self.stored.evaluation.pk,
        )


def approval_check(
    *, version: PluginVersion, actor: User, rating_id: int | None, evaluation_id: int | None
) -> ApprovalJudgement:
    """Before an approval, in its transaction, with ``version`` locked: evaluate again and record it.

    When the result is the one the board was shown (the same rating and policy results, by
    digest), a blocking violation raises PolicyBlocked. When the facts changed since, it
    raises nothing: the caller commits the new assessment, so the board can see it, and then
    refuses with ``judgement.refusal()``."""
    judgement = ApprovalJudgement(
        shown=shown_basis(version=version, rating_id=rating_id, evaluation_id=evaluation_id),
        stored=version_assess(version=version, trigger="approve", actor=actor),
    )
    if not judgement.stale:
        transition_refuse_blocking(version=version, stored=judgement.stored, verb="approved")
    return judgement


def shown_basis(*, version: PluginVersion, rating_id: int | None, evaluation_id: int | None) -> DecisionBasis:
    """The rating and evaluation a decision names: they must exist and be this version's."""
    rating = RiskRating.objects.filter(pk=rating_id or 0, version=version).first()
    evaluation = PolicyEvaluation.objects.filter(pk=evaluation_id or 0, version=version).first()
    if rating is None or evaluation is None:
        raise ValidationFailed(
            f"An approval of {version} names the rating and policy evaluation it approves "
            "(the ones its decision page shows); these are not ratings of this version.",
            code="basis_required",
            errors=[
                {"field": "rating", "code": "basis_required", "message": "A rating of this version."},
                {"field": "evaluation", "code": "basis_required", "message": "An evaluation of this version."},
            ],
        )
    return DecisionBasis(rating=rating, evaluation=evaluation)


def decision_record(
    *, version: PluginVersion, action: str, actor: User | None, reason: str, basis: DecisionBasis
) -> dict:
    """Store the decision with the exact rating and evaluation it was taken on; returns what
    its audit event carries (ids and digests)."""
    decision = Decision.objects.create(
        version=version,
        action=action,
        actor=_user(actor),
        reason=reason,
        rating=basis.rating,
        rating_digest=basis.rating.digest if basis.rating else "",
        evaluation=basis.evaluation,
        evaluation_digest=basis.evaluation.digest if basis.evaluation else "",
    )
    return {
        "decision": decision.pk,
        "rating": decision.rating_id,
        "rating_digest": decision.rating_digest,
        "evaluation": decision.evaluation_id,
        "evaluation_digest": decision.evaluation_digest,
    }


def deploy_check(*, version: PluginVersion, actor: User) -> StoredAssessment:
    """Before a deployment, in its transaction: the same as ``approval_check``. What held at
    approval may not hold now (an exemption expired, a finding was reported since)."""
    return transition_check(version=version, actor=actor, trigger="deploy", verb="deployed")


def transition_check(*, version: PluginVersion, actor: User, trigger: str, verb: str) -> StoredAssessment:
    stored = version_assess(version=version, trigger=trigger, actor=actor)
    transition_refuse_blocking(version=version, stored=stored, verb=verb)
    return stored


def transition_refuse_blocking(*, version: PluginVersion, stored: StoredAssessment, verb: str) -> None:
    blocking = stored.assessment.blocking
    if blocking:
        raise PolicyBlocked(
            f"{version} cannot be {verb}: " + " ".join(f"[{r['key']}] {r['message']}" for r in blocking),
            errors=[{"field": r["key"], "code": r["outcome"], "message": r["message"]} for r in blocking],
        )


def on_awaiting_decision(*, version: PluginVersion) -> StoredAssessment:
    """The pipeline moved ``version`` into awaiting decision: rate it, evaluate the policies,
    and queue the auto-approval where its category has it and nothing stands in the way."""
    stored = version_assess(version=version, trigger="awaiting_decision")
    if auto_approvable(version=version, assessment=stored.assessment):
        version_id = version.pk
        transaction.on_commit(lambda: async_task("decisions.tasks.auto_approve", version_id))
    return stored


def auto_approvable(*, version: PluginVersion, assessment: Assessment) -> bool:
    """Never without policies: a fresh installation that has not synced them approves nothing."""
    return (
        version.plugin.category in settings.WARDEN_AUTO_APPROVE_CATEGORIES
        and assessment.rating.band == "low"
        and bool(assessment.results)
        and all(row["outcome"] == "pass" for row in assessment.results)
    )


def version_reassess(*, version: PluginVersion, actor: User) -> StoredAssessment:
    """On demand (the board or a platform admin): rate and evaluate now, and record it."""
    if not (actor.has_perm("submissions.decide_pluginversion") or actor.has_perm("reviews.waive_stagereview")):
        raise PermissionRefused(f"{actor} may not re-assess versions.")
    with transaction.atomic(durable=True):
        version = PluginVersion.objects.select_for_update(of=("self",)).select_related("plugin").get(pk=version.pk)
        return version_assess(version=version, trigger="on_demand", actor=actor)
