"""Signed attestations of approvals (docs/hosts.md, "Verifying an attestation").

On approval, inside its transaction, ``attestation_issue`` writes an in-toto Statement v1 about
the artifact whose predicate is a SLSA Verification Summary: Warden verified the artifact against
the policy bundle (the enforce-mode policies evaluated and the rubric version, by digest), resting
on the check reports listed as input attestations, and it PASSED. Warden's own decision (who
approved, the rating, the evaluation, the exemptions in force) sits under ``DECISION_FIELD``.
The statement is signed as a DSSE envelope with Warden's Ed25519 key through securesystemslib;
hosts verify it offline with the published public key (``attestation_verify``, the
``verify_attestation`` command, or the snippet in docs/hosts.md). A revoked approval's
attestation stays valid as a signature: the feed, not the attestation, says it is revoked.
"""

import copy
import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from securesystemslib.dsse import Envelope
from securesystemslib.exceptions import Error as SecureSystemsLibError
from securesystemslib.signer import Key

from governance.audit import audit_record
from reviews.models import CheckRun
from reviews.selectors import latest_runs
from submissions.models import PluginVersion

from .attestation_keys import attestation_key_load
from .models import Attestation, Decision, Exemption, Policy, PolicyMode
from .rubric import canonical_json, digest_of
from .rubric_versions import rubric_document

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://slsa.dev/verification_summary/v1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
DECISION_FIELD = "https://warden.example/decision/v1"
# Warden judges a plugin against its policies; it does not verify how the artifact was built, so it
# makes no build-track claim (SLSA_BUILD_LEVEL_UNEVALUATED) and names its own property instead
# (custom SlsaResult values are allowed when they do not start with SLSA_).
VERIFIED_LEVELS = ["SLSA_BUILD_LEVEL_UNEVALUATED", "WARDEN_APPROVED"]


def attestation_issue(*, decision: Decision) -> Attestation:
    """Sign and store the attestation of an approval, with its audit row. Plain atomic: the
    approval calls it inside its own transaction, after the decision is recorded."""
    decision = Decision.objects.select_related(
        "actor", "version__plugin__organisation", "rating__rubric", "evaluation"
    ).get(pk=decision.pk)
    key = attestation_key_load(path=settings.WARDEN_ATTESTATION_KEY)
    statement = attestation_statement(decision=decision)
    envelope = Envelope(payload=canonical_json(statement).encode(), payload_type=PAYLOAD_TYPE, signatures={})
    envelope.sign(key.signer)
    document = envelope.to_dict()
    with transaction.atomic():
        attestation = Attestation.objects.create(
            version=decision.version,
            decision=decision,
            statement=statement,
            envelope=document,
            sha256=digest_of(document),
            key_id=key.keyid,
            issued_at=timezone.now(),
        )
        audit_record(
            actor=decision.actor,
            action="attestation.issue",
            target=attestation,
            data={
                "version": decision.version_id,
                "decision": decision.pk,
                "sha256": attestation.sha256,
                "key_id": key.keyid,
            },
        )
    return attestation


def attestation_of(*, version: PluginVersion) -> Attestation | None:
    """The attestation of the version's approval, if it was approved."""
    return Attestation.objects.filter(version=version).order_by("-issued_at", "-pk").first()


def attestation_body(attestation: Attestation) -> bytes:
    """The envelope as served and digested: ``attestation.sha256`` is the SHA-256 of these bytes."""
    return canonical_json(attestation.envelope).encode()


# -- the statement -----------------------------------------------------------------------


def attestation_statement(*, decision: Decision) -> dict[str, Any]:
    """The in-toto statement of an approval (docs/hosts.md shows one)."""
    version = decision.version
    base = settings.WARDEN_BASE_URL.rstrip("/")
    bundle = policy_bundle(decision=decision)
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": version.artifact_name, "digest": {"sha256": version.sha256}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "verifier": {"id": base, "version": {"warden": settings.SPECTACULAR_SETTINGS["VERSION"]}},
            "timeVerified": _timestamp(decision.created_at),
            "resourceUri": base + reverse("version-detail", args=[version.pk]),
            "policy": {
                "uri": base + reverse("version-attestation", args=[version.pk]) + "#policy-bundle",
                "digest": {"sha256": digest_of(bundle)},
            },
            "inputAttestations": input_attestations(version=version, base=base),
            "verificationResult": "PASSED",
            "verifiedLevels": VERIFIED_LEVELS,
            DECISION_FIELD: _decision_details(decision, bundle),
        },
    }


def policy_bundle(*, decision: Decision) -> dict[str, Any]:
    """What the version was verified against: the enforce-mode policies its evaluation ran (key,
    version, expression) and its rating's rubric (key, version, digest of its factors and bands).
    The statement carries it whole; ``policy.digest`` is the SHA-256 of its canonical JSON."""
    rows = decision.evaluation.results if decision.evaluation else []
    enforced = Q(pk__in=[])
    for row in rows:
        if row["mode"] == PolicyMode.ENFORCE:
            enforced |= Q(key=row["key"], version=row["version"])
    rubric = decision.rating.rubric if decision.rating else None
    return {
        "policies": [
            {"key": p.key, "version": p.version, "expression": p.expression}
            for p in Policy.objects.filter(enforced).order_by("key", "version")
        ],
        "rubric": None
        if rubric is None
        else {"key": rubric.key, "version": rubric.version, "digest": digest_of(rubric_document(rubric))},
    }


def input_attestations(*, version: PluginVersion, base: str) -> list[dict[str, Any]]:
    """The stored reports of the runs that speak for the version now (the latest of each check
    and tool on its current revision), each by the SHA-256 of its bytes, where it can be fetched
    (by those who may see it), and what produced it."""
    runs = latest_runs(CheckRun.objects.filter(version_id=version.pk, revision=version.revision))
    return [
        {
            "name": run.check_key,
            "uri": base + reverse("admin:reviews_checkrun_report", args=[run.pk]),
            "digest": {"sha256": report_sha256(run)},
            "annotations": {"tool": run.tool, "toolVersion": run.tool_version, "status": run.status},
        }
        for run in sorted(runs, key=lambda r: (r.check_key, r.pk))
        if run.report
    ]


def report_sha256(run: CheckRun) -> str:
    digest = hashlib.sha256()
    with run.report.open("rb") as report:
        for chunk in report.chunks():
            digest.update(chunk)
    return digest.hexdigest()


def _decision_details(decision: Decision, bundle: dict[str, Any]) -> dict[str, Any]:
    version, rating, evaluation = decision.version, decision.rating, decision.evaluation
    return {
        "decision": decision.pk,
        "action": decision.action,
        "approvedBy": decision.actor.get_username() if decision.actor else None,  # None: Warden auto-approved
        "reason": decision.reason,
        "version": {
            "id": version.pk,
            "organisation": version.plugin.organisation.slug,
            "plugin": version.plugin.name,
            "number": version.version,
            "revision": version.revision,
        },
        "rating": None
        if rating is None
        else {"id": rating.pk, "total": str(rating.total), "band": rating.band, "digest": decision.rating_digest},
        "evaluation": None if evaluation is None else {"id": evaluation.pk, "digest": decision.evaluation_digest},
        "exemptions": _exemptions_in_force(decision),
        "policyBundle": bundle,
    }


def _exemptions_in_force(decision: Decision) -> list[dict[str, Any]]:
    """The approved, unexpired exemptions the rating and the policy evaluation applied."""
    cover = decision.rating.facts.get("exemptions", {}) if decision.rating else {}
    ids = {*cover.get("policies", {}).values(), *cover.get("findings", {}).values()}
    return [
        {
            "id": exemption.pk,
            "scope": exemption.scope,
            "policy": exemption.policy_key or None,
            "finding": exemption.finding_fingerprint or None,
            "approvedBy": exemption.approved_by.get_username() if exemption.approved_by else None,
            "expiresAt": _timestamp(exemption.expires_at),
        }
        for exemption in Exemption.objects.filter(pk__in=ids).select_related("approved_by").order_by("pk")
    ]


def _timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


# -- verifying ---------------------------------------------------------------------------


class AttestationRejected(Exception):
    """The envelope is not a valid Warden attestation of the artifact; the message says why."""


def attestation_verify(*, envelope: dict[str, Any], artifact_sha256: str, key: Key) -> dict[str, Any]:
    """What a host checks (SLSA's "How to verify"): the signature with Warden's public key, the
    statement and predicate types, the subject's digest against the artifact's SHA-256, and the
    result. Returns the statement; AttestationRejected otherwise."""
    try:
        signed = Envelope.from_dict(copy.deepcopy(envelope))  # from_dict rewrites the signatures it reads
    except (KeyError, TypeError, ValueError) as exc:
        raise AttestationRejected(f"Not a DSSE envelope: {exc!r}.") from None
    if signed.payload_type != PAYLOAD_TYPE:
        raise AttestationRejected(f"The payload type is {signed.payload_type!r}, not {PAYLOAD_TYPE!r}.")
    try:
        signed.verify([key], 1)
        statement = json.loads(signed.payload)
    except (SecureSystemsLibError, ValueError) as exc:
        raise AttestationRejected(f"The signature does not verify with Warden's key {key.keyid}: {exc}") from None
    types = (statement.get("_type"), statement.get("predicateType")) if isinstance(statement, dict) else None
    if types != (STATEMENT_TYPE, PREDICATE_TYPE):
        raise AttestationRejected(f"Not an in-toto statement with predicate type {PREDICATE_TYPE}.")
    digests = [subject.get("digest", {}).get("sha256") for subject in statement.get("subject", [])]
    if artifact_sha256 not in digests:
        raise AttestationRejected(
            f"The artifact's SHA-256 {artifact_sha256} is not the attested subject's ({', '.join(map(str, digests))})."
        )
    result = statement.get("predicate", {}).get("verificationResult")
    if result != "PASSED":
        raise AttestationRejected(f"The verification result is {result!r}, not 'PASSED'.")
    return statement
