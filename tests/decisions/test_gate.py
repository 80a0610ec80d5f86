"""The CI gate (GET .../gate/ and POST .../reports/?wait=true) and the optional auto-approval."""

import json
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from decisions.exemptions import exemption_approve, exemption_request
from decisions.models import PolicyEvaluation, RiskRating
from governance.models import AuditEvent
from tests.conftest import approve
from tests.decisions.test_policies import add_critical, load, policy_yaml

pytestmark = pytest.mark.django_db


@pytest.fixture
def policies(tmp_path):
    load(
        tmp_path,
        critical=policy_yaml(
            "no-critical", "findings.open.critical == 0", message="Fix criticals.", severity="critical"
        ),
        runbook=policy_yaml("runbook", "has(manifest.docs.runbook)", mode="log", severity="low"),
    )


def sarif(severity_score: str) -> bytes:
    rule = {"id": "PY-1", "properties": {"security-severity": severity_score}}
    result = {
        "ruleId": "PY-1",
        "message": {"text": "eval of user input"},
        "locations": [
            {"physicalLocation": {"artifactLocation": {"uri": "acme_exporter/plugin.py"}, "region": {"startLine": 3}}}
        ],
    }
    run = {"tool": {"driver": {"name": "ci-scanner", "version": "1.0", "rules": [rule]}}, "results": [result]}
    return json.dumps({"version": "2.1.0", "runs": [run]}).encode()


def test_the_gate_passes_a_clean_version_and_stores_nothing(client, policies, make_awaiting, author):
    version = make_awaiting("1.0.0")
    counts = (RiskRating.objects.count(), PolicyEvaluation.objects.count(), AuditEvent.objects.count())
    client.force_login(author)
    response = client.get(f"/api/v1/versions/{version.pk}/gate/")
    assert response.status_code == 200
    body = response.json()
    assert (body["verdict"], body["policies"], body["findings"]) == ("pass", [], [])
    assert {r["key"]: r["outcome"] for r in body["evaluated"]} == {"no-critical": "pass", "runbook": "violation"}
    assert body["rating"]["band"] == "low" and body["rating"]["rubric"] == "default v1"
    assert (RiskRating.objects.count(), PolicyEvaluation.objects.count(), AuditEvent.objects.count()) == counts


def test_the_gate_fails_with_the_deciding_policy_and_findings_and_shows_exemptions(
    client, policies, make_awaiting, author, board
):
    version = make_awaiting("1.0.0")
    finding = add_critical(version)
    client.force_login(author)
    body = client.get(f"/api/v1/versions/{version.pk}/gate/").json()
    assert body["verdict"] == "fail"
    assert [(p["key"], p["message"], p["outcome"]) for p in body["policies"]] == [
        ("no-critical", "Fix criticals.", "violation")
    ]
    assert [(f["id"], f["severity"], f["exempted_by"]) for f in body["findings"]] == [(finding.pk, "critical", None)]

    exemption = exemption_request(
        actor=author,
        plugin=version.plugin,
        scope="version",
        version=version,
        finding=finding,
        justification="Dead code, removed in 1.0.1.",
        expires_at=timezone.now() + timedelta(days=7),
    )
    exemption_approve(exemption=exemption, actor=board)
    body = client.get(f"/api/v1/versions/{version.pk}/gate/").json()
    assert (body["verdict"], body["findings"]) == ("pass", [])
    assert [(f["id"], f["exempted_by"]) for f in body["exempted"]["findings"]] == [(finding.pk, exemption.pk)]


def test_posting_a_report_with_wait_answers_with_the_gate(client, policies, make_awaiting, author):
    version = make_awaiting("1.0.0")
    client.force_login(author)
    url = f"/api/v1/versions/{version.pk}/reports/"
    medium = client.post(f"{url}?wait=true", {"format": "sarif", "report": SimpleUploadedFile("a.sarif", sarif("5.0"))})
    assert medium.status_code == 201 and medium.json()["gate"]["verdict"] == "pass"
    critical = client.post(
        f"{url}?wait=true", {"format": "sarif", "report": SimpleUploadedFile("b.sarif", sarif("9.8"))}
    )
    assert critical.status_code == 201
    gate = critical.json()["gate"]
    assert gate["verdict"] == "fail" and gate["policies"][0]["key"] == "no-critical"
    assert gate["findings"][0]["rule_id"] == "PY-1"
    without = client.post(url, {"format": "sarif", "report": SimpleUploadedFile("c.sarif", sarif("9.8"))})
    assert without.status_code == 200 and without.json()["unchanged"]  # b.sarif again: nothing new
    assert "gate" not in without.json()


def test_the_gate_is_a_404_for_who_may_not_see_the_version(client, make_awaiting, other_author):
    version = make_awaiting("1.0.0")
    client.force_login(other_author)
    response = client.get(f"/api/v1/versions/{version.pk}/gate/")
    assert response.status_code == 404 and response.json()["code"] == "not_found"
    assert client.get("/api/v1/versions/999999/gate/").status_code == 404


def test_auto_approval_is_off_by_default(settings, policies, make_awaiting):
    assert settings.WARDEN_AUTO_APPROVE_CATEGORIES == []
    version = make_awaiting("1.0.0")
    assert version.status == "awaiting_decision"
    assert not AuditEvent.objects.filter(action="version.auto_approve").exists()


def test_auto_approval_approves_a_low_risk_version_whose_policies_all_pass(settings, tmp_path, make_awaiting):
    settings.WARDEN_AUTO_APPROVE_CATEGORIES = ["data-connector"]
    load(tmp_path, critical=policy_yaml("no-critical", "findings.open.critical == 0"))
    version = make_awaiting("1.0.0")
    version.refresh_from_db()
    assert version.status == "approved"
    event = AuditEvent.objects.get(action="version.auto_approve", object_id=str(version.pk))
    assert event.actor is None and event.actor_username == "system"
    assert event.reason == "Auto-approved: risk 0.00 (low) and every policy passes."
    assert version.history.first().history_user is None


def test_auto_approval_leaves_a_version_with_any_violation_to_the_board(settings, tmp_path, make_awaiting):
    settings.WARDEN_AUTO_APPROVE_CATEGORIES = ["data-connector"]
    load(tmp_path, runbook=policy_yaml("runbook", "has(manifest.docs.runbook)", mode="log"))
    version = make_awaiting("1.0.0")
    assert version.status == "awaiting_decision"  # a log-mode violation is still a violation


def test_auto_approval_only_for_the_configured_categories(settings, make_awaiting):
    settings.WARDEN_AUTO_APPROVE_CATEGORIES = ["reporting"]
    version = make_awaiting("1.0.0")
    assert version.status == "awaiting_decision"
    assert not AuditEvent.objects.filter(action="version.auto_approve").exists()


def test_the_auto_approval_task_judges_again_and_leaves_a_blocked_version(settings, policies, make_awaiting):
    from decisions.tasks import auto_approve

    version = make_awaiting("1.0.0")  # auto-approval off: it waits
    add_critical(version)  # then a CI job reports a critical finding
    settings.WARDEN_AUTO_APPROVE_CATEGORIES = ["data-connector"]
    assert auto_approve(version.pk) is None
    version.refresh_from_db()
    assert version.status == "awaiting_decision"
    evaluation = PolicyEvaluation.objects.filter(version=version).order_by("-pk").first()
    assert (evaluation.trigger, evaluation.passed) == ("auto_approve", False)


def test_without_policies_the_gate_fails_closed_but_the_board_may_still_approve(client, make_awaiting, author, board):
    version = make_awaiting("1.0.0")
    client.force_login(author)
    response = client.get(f"/api/v1/versions/{version.pk}/gate/")
    assert response.status_code == 200
    body = response.json()
    assert (body["verdict"], body["evaluated"]) == ("fail", [])
    [deciding] = body["policies"]
    assert (deciding["key"], deciding["outcome"], deciding["blocks"]) == ("policies-loaded", "error", True)
    assert deciding["message"].startswith("No policies are loaded") and "manage.py sync_policies" in deciding["message"]

    approve(version=version, actor=board)  # the board decides without policies
    version.refresh_from_db()
    assert version.status == "approved"


def test_the_gate_passes_again_once_policies_are_synced(client, make_awaiting, author, tmp_path):
    version = make_awaiting("1.0.0")
    client.force_login(author)
    assert client.get(f"/api/v1/versions/{version.pk}/gate/").json()["verdict"] == "fail"
    load(tmp_path, critical=policy_yaml("no-critical", "findings.open.critical == 0"))
    body = client.get(f"/api/v1/versions/{version.pk}/gate/").json()
    assert (body["verdict"], body["policies"]) == ("pass", [])


def test_auto_approval_approves_nothing_without_policies(settings, make_awaiting):
    from decisions.tasks import auto_approve

    settings.WARDEN_AUTO_APPROVE_CATEGORIES = ["data-connector"]
    version = make_awaiting("1.0.0")  # low risk, the right category, and no policy at all
    assert version.status == "awaiting_decision"
    assert auto_approve(version.pk) is None  # the task judges the same
    version.refresh_from_db()
    assert version.status == "awaiting_decision"
    assert not AuditEvent.objects.filter(action="version.auto_approve").exists()
