"""Rating versions and evaluating policies: on transitions, on demand, for the CI gate.

``assess_facts`` is the pure core (what the benchmark times): policies that do not read the
rating run first, their violations feed the rating, then the policies that read ``rating``
run. ``version_assess`` stores the outcome inside the caller's transaction (the version row
locked), ``gate_verdict`` computes it without storing anything.
"""

import time
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django_q.tasks import async_task

from governance.audit import audit_lock, audit_record
from governance.errors import FactsChanged, NotFound, PermissionRefused, PolicyBlocked, ValidationFailed
from governance.policies import CompiledPolicy, PreparedFacts, current_policies, evaluate
from governance.transitions import require_reason, save_with_audit
from reviews.models import SEVERITY_RANK, Finding, RunOrigin
from reviews.selectors import WARDEN_FIRST

from .facts import OPEN_TRIAGE, WAITING, current_run_ids, unfinished_checks, version_facts
from .models import Decision, PolicyEvaluation, RiskRating, RiskRubric
from .rubric import DEFAULT_RUBRIC, SEVERITIES, Rating, digest_of, rate, rubric_diff, validated_rubric

UNRATED = {"computed": False, "total": 0.0, "band": ""}
SERIOUS = ("critical", "high")
SEVERITY_ORDER = list(SEVERITY_RANK)  # most severe first
CURRENT_STATES = ("awaiting_decision", "approved", "deployed")


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


def rubric_current(*, lock: bool = False) -> RiskRubric:
    """The newest version of the configured rubric; the default is installed on first use.

    With ``lock`` (inside the caller's transaction, before rating) the row is locked, so a
    rating never commits against weights that ``rubric_revise`` edited underneath it."""
    key = settings.WARDEN_RISK_RUBRIC
    rubric = _newest_rubric(key, lock=lock)
    if rubric is None:
        _install_default_rubric(key)
        rubric = _newest_rubric(key, lock=lock)
    assert rubric is not None  # installed just above, by this request or a concurrent one
    return rubric


def _newest_rubric(key: str, *, lock: bool) -> RiskRubric | None:
    rubrics = RiskRubric.objects.filter(key=key).order_by("-version")
    if not lock:
        return rubrics.first()
    _lock_rubrics()
    return rubrics.select_for_update().first()


def _lock_rubrics() -> None:
    """Every rubric writer and every rating takes the audit chain head before a rubric row.
    A transaction that audits holds the head until it commits, and the pipeline has audited
    before it rates, so taking them in this one order is what keeps the two from deadlocking."""
    audit_lock()


def _install_default_rubric(key: str) -> None:
    """Race-safe: two first requests at once install one default; the loser reads it."""
    try:
        with transaction.atomic():
            _lock_rubrics()
            if RiskRubric.objects.filter(key=key).exists():
                return
            rubric = RiskRubric(key=key, version=1, name="Default rubric", **validated_rubric(DEFAULT_RUBRIC))
            save_with_audit(rubric, actor=None, action="rubric.install_default")
    except IntegrityError:
        pass  # installed meanwhile (rubric_version_unique): the caller reads that one


def rubric_label(rubric: RiskRubric) -> str:
    return f"{rubric.key} v{rubric.version}"


def rubric_document(rubric: RiskRubric) -> dict:
    return {"factors": rubric.factors, "bands": rubric.bands}


def rubric_in_use(*, rubric: RiskRubric) -> bool:
    return RiskRating.objects.filter(rubric=rubric).exists()


def rubric_previous(*, rubric: RiskRubric) -> RiskRubric | None:
    return RiskRubric.objects.filter(key=rubric.key, version__lt=rubric.version).order_by("-version").first()


def rubric_revise(
    *, rubric: RiskRubric, actor, document: dict, name: str, reason: str, description: str = ""
) -> RiskRubric:
    """Change a rubric. A version no rating used yet is changed in place; a used one is
    frozen, so the change becomes the next version and old ratings keep theirs. The reason
    is required: it is what the audit row tells a later reader about changed weights."""
    if actor is None or not actor.has_perm("governance.change_riskrubric"):
        raise PermissionRefused(f"{actor} may not change risk rubrics.")
    reason = require_reason(reason, action="change a risk rubric")
    clean = validated_rubric(document)
    with transaction.atomic():
        _lock_rubrics()
        locked = RiskRubric.objects.select_for_update().filter(pk=rubric.pk).first()
        if locked is None:
            raise NotFound("No such rubric.")
        rubric = locked
        changes = rubric_diff(rubric_document(rubric), clean)
        if rubric_in_use(rubric=rubric):
            latest = RiskRubric.objects.filter(key=rubric.key).order_by("-version").first()
            rubric = RiskRubric(key=rubric.key, version=latest.version + 1 if latest else 1, created_by=actor)
            action = "rubric.new_version"
        else:
            action = "rubric.edit"
        rubric.name, rubric.description = name, description
        rubric.factors, rubric.bands = clean["factors"], clean["bands"]
        save_with_audit(rubric, actor=actor, action=action, reason=reason, data={"changes": changes})
    return rubric


def rubric_what_if(*, document: dict, limit: int = 500) -> list[dict]:
    """Current versions' latest stored facts rated under a draft rubric; nothing is saved."""
    draft = validated_rubric(document)
    latest: dict[int, RiskRating] = {}
    ratings = (
        RiskRating.objects.filter(version__status__in=CURRENT_STATES)
        .select_related("version__plugin", "rubric")
        .order_by("-version_id", "-pk")
    )
    for rating in ratings.iterator(chunk_size=500):
        if len(latest) >= limit and rating.version_id not in latest:
            break
        latest.setdefault(rating.version_id, rating)
    rows = []
    for rating in latest.values():
        what_if = rate(facts=rating.facts, rubric=draft, rubric_label="draft")
        rows.append(
            {
                "version": rating.version,
                "rubric": rubric_label(rating.rubric),
                "total": rating.total,
                "band": rating.band,
                "draft_total": what_if.total,
                "draft_band": what_if.band,
                "delta": what_if.total - rating.total,
            }
        )
    return sorted(rows, key=lambda r: (-abs(r["delta"]), r["version"].pk))


# -- assessing versions --------------------------------------------------------------------


def assess_version(*, version, now=None, lock_rubric: bool = False) -> tuple[Assessment, RiskRubric]:
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


def version_assess(*, version, trigger: str, actor=None) -> StoredAssessment:
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


def _user(actor):
    return actor if getattr(actor, "pk", None) else None  # None: the system


def _store_rating(version, rubric: RiskRubric, assessment: Assessment, trigger: str, actor) -> RiskRating:
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


def decision_basis(*, version) -> DecisionBasis:
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

    def refusal(self, version) -> FactsChanged:
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


def approval_check(*, version, actor, rating_id: int | None, evaluation_id: int | None) -> ApprovalJudgement:
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


def shown_basis(*, version, rating_id: int | None, evaluation_id: int | None) -> DecisionBasis:
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


def decision_record(*, version, action: str, actor, reason: str, basis: DecisionBasis) -> dict:
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


def deploy_check(*, version, actor) -> StoredAssessment:
    """Before a deployment, in its transaction: the same as ``approval_check``. What held at
    approval may not hold now (an exemption expired, a finding was reported since)."""
    return transition_check(version=version, actor=actor, trigger="deploy", verb="deployed")


def transition_check(*, version, actor, trigger: str, verb: str) -> StoredAssessment:
    stored = version_assess(version=version, trigger=trigger, actor=actor)
    transition_refuse_blocking(version=version, stored=stored, verb=verb)
    return stored


def transition_refuse_blocking(*, version, stored: StoredAssessment, verb: str) -> None:
    blocking = stored.assessment.blocking
    if blocking:
        raise PolicyBlocked(
            f"{version} cannot be {verb}: " + " ".join(f"[{r['key']}] {r['message']}" for r in blocking),
            errors=[{"field": r["key"], "code": r["outcome"], "message": r["message"]} for r in blocking],
        )


def on_awaiting_decision(*, version) -> StoredAssessment:
    """The pipeline moved ``version`` into awaiting decision: rate it, evaluate the policies,
    and queue the auto-approval where its category has it and nothing stands in the way."""
    stored = version_assess(version=version, trigger="awaiting_decision")
    if auto_approvable(version=version, assessment=stored.assessment):
        version_id = version.pk
        transaction.on_commit(lambda: async_task("governance.tasks.auto_approve", version_id))
    return stored


def auto_approvable(*, version, assessment: Assessment) -> bool:
    """Never without policies: a fresh installation that has not synced them approves nothing."""
    return (
        version.plugin.category in settings.WARDEN_AUTO_APPROVE_CATEGORIES
        and assessment.rating.band == "low"
        and bool(assessment.results)
        and all(row["outcome"] == "pass" for row in assessment.results)
    )


def version_reassess(*, version, actor) -> StoredAssessment:
    """On demand (the board or a platform admin): rate and evaluate now, and record it."""
    from submissions.models import PluginVersion

    if not (actor.has_perm("submissions.decide_pluginversion") or actor.has_perm("reviews.waive_stagereview")):
        raise PermissionRefused(f"{actor} may not re-assess versions.")
    with transaction.atomic():
        version = PluginVersion.objects.select_for_update(of=("self",)).select_related("plugin").get(pk=version.pk)
        return version_assess(version=version, trigger="on_demand", actor=actor)


NO_POLICIES = {
    "key": "policies-loaded",
    "version": 0,
    "title": "Policies are loaded",
    "severity": "critical",
    "mode": "enforce",
    "outcome": "error",
    "message": (
        "No policies are loaded, so the gate cannot pass anything. "
        "Run `manage.py sync_policies` (docs/runbook.md, first installation)."
    ),
    "error": "No current policy is on.",
    "exemption": None,
    "blocks": True,
}


# Statuses in which the version's review ended without a pass: nothing a check does changes that.
ENDED_WITHOUT_PASS = {
    "rejected": "The version was rejected",
    "withdrawn": "The author withdrew the version",
    "revoked": "The approval was revoked",
    "rolled_back": "The version was rolled back",
    "changes_requested": "A reviewer requested changes; the author must resubmit",
}
NOT_IN_REVIEW = ("draft", "submitted")


def gate_verdict(*, version) -> dict:
    """The CI gate: what is known about ``version`` now, as one of three verdicts. Stores nothing.

    1. ``fail`` when its review ended without a pass (a blocking stage failed, the board
       rejected it, changes were requested, it was withdrawn, revoked or rolled back).
    2. ``pending`` while it is not in review yet (a draft; submitted, intake not done) or a
       check of the current round has not finished (not queued yet, queued, running).
    3. ``fail`` when an enforce-mode policy is violated (an errored check violates
       ``checks-complete``), or when no policy is loaded at all (fails closed).
    4. ``pass`` otherwise.
    """
    assessment, rubric = assess_version(version=version)
    facts = assessment.facts
    waiting = [{"check": key, "status": status} for key, status in facts["checks"].items() if status in WAITING]
    deciding: list[dict] = []
    if version.status in ENDED_WITHOUT_PASS:
        verdict, reasons = "fail", [_ended_reason(version)]
    elif version.status in NOT_IN_REVIEW:
        verdict = "pending"
        reasons = [
            {
                "code": "not_in_review",
                "detail": f"The version is {version.get_status_display().lower()}: "
                "its checks have not been queued yet.",
            }
        ]
    elif waiting:
        verdict = "pending"
        reasons = [
            {
                "code": "checks_unfinished",
                "detail": "Waiting for "
                + ", ".join(f"{w['check']} ({w['status'].replace('_', ' ')})" for w in waiting)
                + ".",
            }
        ]
    else:
        deciding = assessment.blocking if assessment.results else [dict(NO_POLICIES)]
        verdict = "fail" if deciding else "pass"
        reasons = [{"code": "policy_violation", "detail": f"[{r['key']}] {r['message']}"} for r in deciding]
    return {
        "version": version.pk,
        "status": version.status,
        "review_round": version.review_round,
        "verdict": verdict,
        "reasons": reasons,
        "waiting_for": waiting,
        "policies": deciding,
        **_gate_findings(version, assessment),
        "evaluated": assessment.results,
        "rating": {
            "total": str(assessment.rating.total),
            "band": assessment.rating.band,
            "rubric": rubric_label(rubric),
            "digest": assessment.rating.digest,
            "summary": assessment.rating.summary,
        },
    }


def gate_verdict_waiting(*, version) -> dict:
    """``?wait=true``: the gate verdict once it is no longer ``pending``, polling every
    ``WARDEN_GATE_WAIT_POLL_SECONDS`` for at most ``WARDEN_GATE_WAIT_SECONDS``; ``wait``
    in the answer says how long it waited and whether it gave up (still pending)."""
    limit, poll = settings.WARDEN_GATE_WAIT_SECONDS, settings.WARDEN_GATE_WAIT_POLL_SECONDS
    started = time.monotonic()
    while True:
        answer = gate_verdict(version=version)
        waited = time.monotonic() - started
        if answer["verdict"] != "pending" or waited >= limit:
            break
        time.sleep(min(poll, limit - waited))
        version.refresh_from_db(fields=["status", "review_round", "revision"])
    answer["wait"] = {
        "waited_seconds": round(waited, 2),
        "limit_seconds": limit,
        "gave_up": answer["verdict"] == "pending",
    }
    return answer


def _ended_reason(version) -> dict:
    detail = ENDED_WITHOUT_PASS[version.status]
    failed = (
        version.stage_reviews.filter(round=version.review_round, blocking=True, status="failed")
        .select_related("stage")
        .first()
    )
    if failed is not None:
        return {
            "code": "stage_failed",
            "detail": f"Blocking stage {failed.stage.name} failed: {failed.decision_reason}",
        }
    if version.decision_reason and version.status in ("rejected", "revoked", "rolled_back"):
        detail += f": {version.decision_reason}"
    return {"code": version.status, "detail": detail + "."}


def _gate_findings(version, assessment: Assessment) -> dict:
    """The open critical and high findings, and what exemptions suppress (shown, not hidden).

    A place that several sources report (``location_key``) is one entry listing its sources, as
    the facts count it: Warden's own findings there govern (a posted copy never hides, exempts or
    replaces one), and posted copies speak only where Warden found nothing; the entry is open
    while a governing member is open, at the highest severity an open member gives it."""
    exempted_by = assessment.facts["exemptions"]["findings"]
    current = Finding.objects.filter(check_run__in=current_run_ids(version=version))
    serious = current.filter(severity__in=SERIOUS)
    shared = serious.exclude(location_key="").values("location_key")  # and every other source there
    places: dict[str, list[Finding]] = {}
    for f in (
        (serious | current.filter(location_key__in=shared)).select_related("check_run").order_by(WARDEN_FIRST, "pk")
    ):
        places.setdefault(f.location_key or f"finding:{f.pk}", []).append(f)
    findings = []
    for members in places.values():
        warden = [f for f in members if f.check_run.origin == RunOrigin.INTERNAL]
        governing = [f for f in (warden or members) if f.triage in OPEN_TRIAGE]
        if not governing:
            continue  # triaged by who governs the place: a posted copy does not bring it back
        lead = next((f for f in governing if f.fingerprint not in exempted_by), governing[0])
        opened = [f for f in members if f.triage in OPEN_TRIAGE and f.fingerprint not in exempted_by] or [lead]
        severity = min((f.severity for f in opened), key=SEVERITY_ORDER.index)
        if severity not in SERIOUS:
            continue
        findings.append(
            {
                "id": lead.pk,
                "kind": lead.kind,
                "severity": severity,
                "rule_id": lead.rule_id,
                "title": lead.title,
                "path": lead.path,
                "line": lead.line,
                "fingerprint": lead.fingerprint,
                "exempted_by": exempted_by.get(lead.fingerprint),
                "sources": [f.check_run.tool or f.check_run.check_key for f in members],
            }
        )
    return {
        "findings": [f for f in findings if f["exempted_by"] is None],
        "exempted": {
            "policies": [r for r in assessment.results if r["outcome"] == "exempted"],
            "findings": [f for f in findings if f["exempted_by"] is not None],
        },
    }
