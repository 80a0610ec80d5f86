"""Evidence uploads, their review, assessments decided on them, and the compliance sign-off."""

import hashlib
from collections.abc import Sequence

from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from governance.audit import audit_record
from governance.errors import PermissionRefused, TransitionRefused, ValidationFailed
from governance.permissions import is_org_member
from governance.transitions import apply_transition, require_reason
from reviews.models import ReviewStatus, StageReview
from reviews.services import stage_pass
from submissions.models import PluginVersion

from .models import (
    AssessmentStatus,
    ComplianceSignOff,
    Control,
    ControlAssessment,
    Criticality,
    Evidence,
    EvidenceStatus,
    ResidualRisk,
    Result,
    evidence_path,
)

MAX_EVIDENCE_BYTES = 20 * 1024 * 1024
# What evidence may be, by extension and by its first bytes: never HTML, never anything runnable.
ALLOWED = {
    ".pdf": (b"%PDF-",),
    ".png": (b"\x89PNG\r\n\x1a\n",),
    ".jpg": (b"\xff\xd8\xff",),
    ".jpeg": (b"\xff\xd8\xff",),
    ".txt": (),
    ".md": (),
    ".csv": (),
}


def evidence_upload(
    *,
    version,
    controls: list[Control],
    kind: str,
    file,
    actor,
    description: str = "",
    expires_on=None,
    replaces: Evidence | None = None,
) -> Evidence:
    """An author gives evidence for controls of their version; ``replaces`` makes it the next revision."""
    if not is_org_member(actor, version.plugin.organisation):
        raise PermissionRefused(f"{actor} may not give evidence for {version}.")
    if replaces is not None and replaces.version_id != version.pk:
        raise ValidationFailed("The earlier revision belongs to another version.", code="wrong_version")
    name, sha256, size = _checked(file)
    stored = default_storage.save(evidence_path(None, name), file)  # type: ignore[arg-type]
    try:
        # not durable: the admin's add/change form calls it inside the transaction Django opens
        with transaction.atomic():
            evidence = Evidence.objects.create(
                version=version,
                kind=kind,
                description=description,
                file=stored,
                file_name=name,
                sha256=sha256,
                size=size,
                expires_on=expires_on,
                uploaded_by=actor,
                previous=replaces,
                revision=(replaces.revision + 1) if replaces else 1,
            )
            evidence.controls.set(controls)
            waiting = ControlAssessment.objects.select_for_update().filter(
                stage_review__version=version, control__in=controls, status=AssessmentStatus.TODO
            )
            for assessment in waiting.select_related("control").order_by("pk"):
                apply_transition(
                    assessment,
                    "await_review",
                    actor=actor,
                    action="control.await_review",
                    data={"control": str(assessment.control), "evidence": evidence.pk},
                )
            audit_record(
                actor=actor,
                action="evidence.upload",
                target=version,
                data={"evidence": evidence.pk, "revision": evidence.revision, "sha256": sha256},
            )
    except BaseException:
        default_storage.delete(stored)
        raise
    return evidence


def _checked(file) -> tuple[str, str, int]:
    name = (file.name or "evidence").rsplit("/", 1)[-1]
    suffix = ("." + name.rsplit(".", 1)[-1].lower()) if "." in name else ""
    if suffix not in ALLOWED:
        raise ValidationFailed(
            f"{name}: evidence must be one of {', '.join(sorted(ALLOWED))}.", code="invalid_evidence"
        )
    if file.size > MAX_EVIDENCE_BYTES or file.size == 0:
        raise ValidationFailed(
            f"{name}: evidence must be between 1 byte and {MAX_EVIDENCE_BYTES} bytes.", code="invalid_evidence"
        )
    file.seek(0)
    head = file.read(16)
    signatures = ALLOWED[suffix]
    if signatures and not any(head.startswith(s) for s in signatures):
        raise ValidationFailed(f"{name} is not really a {suffix} file.", code="invalid_evidence")
    if not signatures and (b"\x00" in head or head.lstrip().lower().startswith((b"<!doctype", b"<html", b"<svg"))):
        raise ValidationFailed(f"{name} is not plain text.", code="invalid_evidence")
    digest = hashlib.sha256()
    file.seek(0)
    for chunk in file.chunks():
        digest.update(chunk)
    file.seek(0)
    return name, digest.hexdigest(), file.size


def _compliance_reviewer(actor, version) -> StageReview:
    review = (
        StageReview.objects.filter(
            version=version, stage__kind="compliance", status__in=[ReviewStatus.PENDING, ReviewStatus.IN_PROGRESS]
        )
        .select_related("stage")
        .first()
    )
    if review is None:
        raise TransitionRefused(f"{version} has no open compliance review.")
    if is_org_member(actor, version.plugin.organisation) or not actor.has_perm("reviews.review_stagereview", review):
        raise PermissionRefused(f"{actor} is not a compliance reviewer of {version}.")
    return review


def evidence_decide(*, evidence: Evidence, actor, accept: bool, reason: str) -> Evidence:
    review = _compliance_reviewer(actor, evidence.version)
    return compliance_decide(review=review, actor=actor, evidence=[(evidence, accept, reason)])[1][0]


def assessment_decide(*, assessment: ControlAssessment, actor, result: str, reason: str) -> ControlAssessment:
    return compliance_decide(review=assessment.stage_review, actor=actor, assessments=[(assessment, result, reason)])[
        0
    ][0]


def compliance_decide(
    *,
    review: StageReview,
    actor,
    assessments: Sequence[tuple[ControlAssessment, str, str]] = (),
    evidence: Sequence[tuple[Evidence, bool, str]] = (),
) -> tuple[list[ControlAssessment], list[Evidence]]:
    """The officer's judgements on one compliance review in one go (the dossier's table):
    controls assessed and evidence accepted or rejected, each with its reason; all of them or,
    when one is refused, none."""
    if not assessments and not evidence:
        raise ValidationFailed(
            "Choose a result for at least one control or piece of evidence.", code="nothing_to_decide"
        )
    results = []
    for assessment, result, reason in assessments:
        if result not in (Result.MET, Result.PARTIALLY_MET, Result.NOT_MET, Result.NOT_APPLICABLE):
            raise ValidationFailed(f"{result!r} is not a result.", code="invalid_result")
        results.append((assessment.pk, result, require_reason(reason, action=f"assess {assessment.control}")))
    verdicts = [
        (e.pk, accept, require_reason(reason, action=f"accept or reject {e}")) for e, accept, reason in evidence
    ]
    with transaction.atomic(durable=True):
        _lock_review(review)  # first, as every change of the review does: a sign-off cannot slip between
        locked = (
            ControlAssessment.objects.select_for_update(of=("self",))
            .select_related("stage_review__version__plugin", "control__framework")
            .in_bulk([pk for pk, _result, _reason in results])
        )
        items = Evidence.objects.select_for_update().in_bulk([pk for pk, _accept, _reason in verdicts])
        if any(pk not in locked or locked[pk].stage_review_id != review.pk for pk, _r, _s in results) or any(
            pk not in items or items[pk].version_id != review.version_id for pk, _a, _s in verdicts
        ):
            raise ValidationFailed(f"Everything decided must belong to {review}.", code="wrong_review")
        if _compliance_reviewer(actor, review.version).pk != review.pk:
            raise TransitionRefused(f"{review} is not the open compliance review of {review.version}.")
        decided = [_assess(locked[pk], actor, result, reason) for pk, result, reason in results]
        judged = [_judge(items[pk], actor, accept, reason) for pk, accept, reason in verdicts]
    return decided, judged


def _assess(assessment: ControlAssessment, actor, result: str, reason: str) -> ControlAssessment:
    assessment.decide()
    assessment.result, assessment.reason = result, reason
    assessment._history_user = actor  # type: ignore[attr-defined]
    assessment.save()
    audit_record(
        actor=actor,
        action="control.assess",
        target=assessment.stage_review,
        reason=reason,
        data={"control": str(assessment.control), "result": result},
    )
    return assessment


def _judge(evidence: Evidence, actor, accept: bool, reason: str) -> Evidence:
    if evidence.status != EvidenceStatus.IN_REVIEW:
        raise TransitionRefused(f"{evidence} was already {evidence.get_status_display().lower()}.")
    evidence.accept() if accept else evidence.reject()
    evidence.decided_by, evidence.decided_at, evidence.decision_reason = actor, timezone.now(), reason
    evidence._history_user = actor  # type: ignore[attr-defined]
    evidence.save()
    audit_record(
        actor=actor,
        action="evidence.accept" if accept else "evidence.reject",
        target=evidence.version,
        reason=reason,
        data={"evidence": evidence.pk},
    )
    return evidence


def compliance_sign_off(*, review: StageReview, actor, residual_risk: str, statement: str) -> ComplianceSignOff:
    """Pass the compliance stage with a residual risk, once nothing is open and no critical
    control failed."""
    statement = require_reason(statement, action="sign off")
    if residual_risk not in ResidualRisk.values:
        raise ValidationFailed(f"{residual_risk!r} is not a residual risk.", code="invalid_risk")
    with transaction.atomic(durable=True):
        _lock_review(review)  # no assessment or evidence decision lands between the checks and the pass
        reviewing = _compliance_reviewer(actor, review.version)
        if reviewing.pk != review.pk:
            raise TransitionRefused(f"{review} is not an open compliance stage.")
        open_items = _open_items(review)
        if open_items:
            raise TransitionRefused(f"Sign-off refused while anything is open: {'; '.join(open_items)}.")
        failed = ControlAssessment.objects.filter(
            stage_review=review, result=Result.NOT_MET, control__criticality=Criticality.HIGH
        )
        if failed.exists():
            keys = ", ".join(sorted(str(a.control) for a in failed.select_related("control__framework")))
            raise TransitionRefused(
                f"High-criticality controls are not met ({keys}): fail the stage or request changes."
            )
        sign_off = ComplianceSignOff.objects.create(
            stage_review=review, residual_risk=residual_risk, statement=statement, signed_by=actor
        )
        stage_pass(review=review, actor=actor, reason=f"Residual risk {residual_risk}: {statement}")
    return sign_off


def _lock_review(review: StageReview) -> None:
    """Lock the version, then the review (the order of reviews.services), inside the caller's transaction."""
    PluginVersion.objects.select_for_update().only("pk").get(pk=review.version_id)
    StageReview.objects.select_for_update().only("pk").get(pk=review.pk)


def _open_items(review: StageReview) -> list[str]:
    todo = ControlAssessment.objects.filter(stage_review=review).exclude(status=AssessmentStatus.DONE)
    todo = todo.select_related("control__framework")
    items = [f"control {a.control} is {a.get_status_display().lower()}" for a in todo]
    pending = Evidence.objects.filter(version_id=review.version_id, status=EvidenceStatus.IN_REVIEW)
    items += [f"evidence {e} is in review" for e in pending]
    return items
