"""``/api/v1/findings/``: list with filters, detail, triage (reviews/findings_api.py)."""

import pytest
from rest_framework.test import APIClient

from reviews import services as review
from reviews.checks import CheckOutcome
from reviews.findings_data import FindingData
from reviews.models import Finding, FindingTriage
from tests.conftest import open_review, token_client
from tests.reviews.test_checks import install_check

pytestmark = pytest.mark.django_db


@pytest.fixture
def findings(in_review, monkeypatch, pipeline, platform_admin, django_capture_on_commit_callbacks):
    def run(ctx):
        return CheckOutcome(
            passed=False,
            findings=[
                FindingData(rule_id="X1", title="eval of input", severity="high", snippet="eval(data)"),
                FindingData(rule_id="X2", title="weak hash", severity="low", snippet="md5()"),
            ],
        )

    install_check(monkeypatch, pipeline["security"], "test.api", run, tool="test")
    with django_capture_on_commit_callbacks(execute=True):
        review.stage_pass(review=open_review(in_review, "eligibility"), actor=platform_admin)
    return {finding.rule_id: finding for finding in Finding.objects.filter(version=in_review)}


def test_a_ticketing_tool_lists_filters_and_reads_findings(findings, security, in_review):
    client = token_client(security, "read")
    listed = client.get("/api/v1/findings/", {"version": in_review.pk}).json()
    assert {"X1", "X2"} <= {row["rule_id"] for row in listed["results"]}
    assert len(listed["results"]) == Finding.objects.filter(version=in_review).count()
    high = client.get(
        "/api/v1/findings/", {"severity": ["high", "critical"], "kind": "security", "triage": "open"}
    ).json()
    assert [row["rule_id"] for row in high["results"]] == ["X1"]
    by_rule = client.get("/api/v1/findings/", {"rule": "eligibility.licence", "tool": "warden"}).json()
    assert len(by_rule["results"]) == 1
    detail = client.get(f"/api/v1/findings/{findings['X1'].pk}/").json()
    assert (detail["check_key"], detail["severity"], detail["triage"]) == ("test.api", "high", "open")
    refused = client.get("/api/v1/findings/", {"severity": "dire"})
    assert refused.status_code == 400 and refused.json()["errors"][0]["field"] == "severity"


def test_triage_through_the_api_is_the_admins_triage(findings, security, author):
    finding = findings["X1"]
    url = f"/api/v1/findings/{finding.pk}/triage/"
    assert token_client(security, "read").post(url, {"to_state": "false_positive", "reason": "x"}).status_code == 403
    no_reason = token_client(security, "triage").post(url, {"to_state": "false_positive"})
    assert no_reason.status_code == 400
    done = token_client(security, "triage").post(url, {"to_state": "false_positive", "reason": "Constant input."})
    assert done.status_code == 200 and done.json()["triage"] == "false_positive"
    trail = FindingTriage.objects.get(finding=finding)
    assert (trail.actor, trail.reason) == (security, "Constant input.")
    # the author sees the finding, and may not judge it
    assert token_client(author, "read").get(f"/api/v1/findings/{finding.pk}/").status_code == 200
    refused = token_client(author, "triage").post(url, {"to_state": "accepted", "reason": "mine"})
    assert refused.status_code == 403
    assert Finding.objects.get(pk=finding.pk).triage == "false_positive"


def test_findings_of_another_organisation_are_404(findings, other_author):
    finding = findings["X1"]
    client = token_client(other_author, "triage")
    assert client.get(f"/api/v1/findings/{finding.pk}/").status_code == 404
    assert (
        client.post(f"/api/v1/findings/{finding.pk}/triage/", {"to_state": "fixed", "reason": "x"}).status_code == 404
    )
    assert len(client.get("/api/v1/findings/").json()["results"]) == 0
    assert APIClient().get("/api/v1/findings/").status_code == 401
