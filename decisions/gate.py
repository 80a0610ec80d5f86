"""The CI gate: pass, fail or pending for a version, from its current rating, policies and
checks. Stores nothing (decisions/api.py serves it)."""

import time

from django.conf import settings

from reviews.models import SEVERITY_RANK, Finding, RunOrigin
from reviews.selectors import WARDEN_FIRST
from submissions.models import PluginVersion

from .facts import OPEN_TRIAGE, WAITING, current_run_ids
from .rubric_versions import rubric_label
from .services import Assessment, assess_version

SERIOUS = ("critical", "high")

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


def gate_verdict(*, version: PluginVersion) -> dict:
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


def gate_verdict_waiting(*, version: PluginVersion) -> dict:
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


def _ended_reason(version: PluginVersion) -> dict:
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


def _gate_findings(version: PluginVersion, assessment: Assessment) -> dict:
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
        severity = min((f.severity for f in opened), key=SEVERITY_RANK.__getitem__)
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
