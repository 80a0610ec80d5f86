"""Canned responses, from the admin's list to what the author reads.

1. Platform admins keep them (``canned_response_save``, from the admin's change form).
2. A reviewer failing a stage or requesting changes picks some of those that apply to the
   stage (``responses_for``), starts the reason from their texts (``draft_reason``) and edits it.
3. ``stage_fail`` and ``stage_request_changes`` (reviews/services.py) refuse a response that is
   inactive or meant for another kind of stage (``responses_chosen``) and keep, with the
   decision, a copy of each as it read then (``responses_record``).
4. The dossier shows the author each used response with the evidence it points at
   (``response_evidence_by_review``): the findings of its check, or the key of its policy,
   whose outcome the decisions layer looks up itself.
"""

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction

from governance.checks import REGISTRY
from governance.errors import ValidationFailed
from governance.ids import is_id
from governance.permissions import require_perm
from governance.transitions import save_with_audit
from submissions.models import PluginVersion

from .models import SEVERITY_RANK, CannedResponse, Finding, StageReview, UsedResponse
from .selectors import current_runs


@dataclass(frozen=True)
class ResponseEvidence:
    """One response a decision used, as the author was told it, and what it points at."""

    key: str
    title: str
    text: str  # the canned text when it was used; the reviewer's edited reason is the review's
    check_key: str
    check_title: str
    policy_key: str  # the dossier looks up the policy's outcome for the version itself
    findings: list[Finding]  # of the check's current runs for the version, most severe first


def canned_response_save(*, response: CannedResponse, actor: User, changed: list[str]) -> CannedResponse:
    """Create or change a canned response. Decisions that used it keep the text they used."""
    adding = response._state.adding
    require_perm(
        actor,
        "reviews.add_cannedresponse" if adding else "reviews.change_cannedresponse",
        detail=f"{actor} may not keep canned responses.",
    )
    try:
        response.full_clean()
    except ValidationError as exc:
        errors = [{"field": f, "code": "invalid", "message": " ".join(m)} for f, m in exc.message_dict.items()]
        raise ValidationFailed(f"{response.key or 'The response'} is not valid.", errors=errors) from None
    # not durable: the admin's add/change form calls it inside the transaction Django opens
    with transaction.atomic():
        save_with_audit(
            response,
            actor=actor,
            action="canned_response.create" if adding else "canned_response.change",
            data={"key": response.key, "changed": sorted(changed)},
        )
    return response


def responses_for(*, review: StageReview) -> list[CannedResponse]:
    """The active responses a reviewer of ``review`` may pick, by title."""
    kind = review.stage.kind
    return [r for r in CannedResponse.objects.filter(is_active=True) if r.applies_to(kind)]


def draft_reason(*, responses: Iterable[CannedResponse]) -> str:
    """Where the reviewer's reason starts: the picked texts, one paragraph each."""
    return "\n\n".join(r.text.strip() for r in responses)


def responses_by_ids(ids: Sequence[str]) -> list[CannedResponse]:
    """The responses a form posted (``responses`` ids), in the order given; an unknown id is refused."""
    if not all(is_id(pk) for pk in ids):
        raise _refused("The chosen responses are not valid.", "Not a list of response ids.")
    wanted = list(dict.fromkeys(int(pk) for pk in ids))
    found = CannedResponse.objects.in_bulk(wanted)
    missing = [f"#{pk}" for pk in wanted if pk not in found]
    if missing:
        raise _refused(f"No canned response {', '.join(missing)}.", "Unknown response.")
    return [found[pk] for pk in wanted]


def responses_chosen(*, review: StageReview, responses: Sequence[CannedResponse]) -> list[CannedResponse]:
    """The picked responses as stored now, once each, if every one is active and meant for
    the stage's kind; otherwise nothing is decided."""
    if not responses:
        return []
    ids = list(dict.fromkeys(r.pk for r in responses))
    current = CannedResponse.objects.in_bulk(ids)
    kind = review.stage.kind
    refused = [
        current[pk].title if pk in current else f"#{pk}"
        for pk in ids
        if pk not in current or not current[pk].is_active or not current[pk].applies_to(kind)
    ]
    if refused:
        raise _refused(
            f"Not offered for the {review.stage.name} stage: {', '.join(refused)}.",
            "Inactive, or meant for another kind of stage.",
        )
    return [current[pk] for pk in ids]


def responses_record(*, review: StageReview, responses: Sequence[CannedResponse]) -> None:
    """Keep a copy of each response with the decision (in the decision's transaction)."""
    UsedResponse.objects.bulk_create(
        UsedResponse(
            review=review,
            response=r,
            position=position,
            key=r.key,
            title=r.title,
            text=r.text,
            check_key=r.check_key,
            policy_key=r.policy_key,
        )
        for position, r in enumerate(responses)
    )


def response_evidence_by_review(*, version: PluginVersion) -> dict[int, list[ResponseEvidence]]:
    """Every response used in the version's stage reviews (all rounds), by review id, in the
    order the reviewer picked them, each with its evidence. Three queries however many."""
    used = list(UsedResponse.objects.filter(review__version_id=version.pk).order_by("review_id", "position"))
    findings = _findings_by_check(version, {u.check_key for u in used if u.check_key})
    evidence: dict[int, list[ResponseEvidence]] = defaultdict(list)
    for u in used:
        spec = REGISTRY.get(u.check_key)
        evidence[u.review_id].append(
            ResponseEvidence(
                key=u.key,
                title=u.title,
                text=u.text,
                check_key=u.check_key,
                check_title=spec.title if spec else u.check_key,
                policy_key=u.policy_key,
                findings=findings.get(u.check_key, []),
            )
        )
    return dict(evidence)


def response_evidence(*, review: StageReview) -> list[ResponseEvidence]:
    """The responses one review used, with their evidence."""
    return response_evidence_by_review(version=review.version).get(review.pk, [])


def _findings_by_check(version: PluginVersion, check_keys: set[str]) -> dict[str, list[Finding]]:
    if not check_keys:
        return {}
    runs = {run.pk: run.check_key for run in current_runs(version=version) if run.check_key in check_keys}
    by_check: dict[str, list[Finding]] = defaultdict(list)
    for finding in Finding.objects.filter(check_run_id__in=runs):
        by_check[runs[finding.check_run_id]].append(finding)
    for found in by_check.values():
        found.sort(key=lambda f: (SEVERITY_RANK.get(f.severity, len(SEVERITY_RANK)), f.pk))
    return by_check


def _refused(detail: str, message: str) -> ValidationFailed:
    return ValidationFailed(
        detail, code="response_refused", errors=[{"field": "responses", "code": "response_refused", "message": message}]
    )
