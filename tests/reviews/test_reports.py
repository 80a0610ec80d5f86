"""External reports over REST: real tool outputs in, findings out; bad reports change nothing."""

import json
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from rest_framework.test import APIClient

from governance.models import AuditEvent
from reviews.models import CheckRun, Finding, FindingTriage

pytestmark = pytest.mark.django_db

REPORTS = Path(__file__).resolve().parents[1] / "fixtures" / "reports"


@pytest.fixture
def api(author):
    client = APIClient()
    client.force_authenticate(author)
    return client


def post(api, version, fmt: str, content: bytes, name: str = "report.json"):
    return api.post(
        f"/api/v1/versions/{version.pk}/reports/",
        {"format": fmt, "report": SimpleUploadedFile(name, content)},
        format="multipart",
    )


def stored_reports() -> set[str]:
    root = Path(settings.MEDIA_ROOT) / "reports"
    return {str(p) for p in root.rglob("*") if p.is_file()} if root.exists() else set()


def test_bandit_sarif_becomes_an_external_run_with_findings(api, in_review):
    response = post(api, in_review, "sarif", (REPORTS / "bandit.sarif").read_bytes(), "bandit.sarif")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["check_key"], body["status"], body["tool"]) == ("external.sarif", "failed", "Bandit")
    run = CheckRun.objects.get(pk=body["id"])
    assert run.origin == "external" and run.report.read() == (REPORTS / "bandit.sarif").read_bytes()
    b602 = run.findings.get(rule_id="B602")
    assert (b602.severity, b602.cwe, b602.path, b602.line) == ("high", "CWE-78", "vulnpkg/runner.py", 5)
    assert AuditEvent.objects.filter(action="report.attach", object_id=str(in_review.pk)).exists()


def test_pip_audit_report_gives_dependency_findings(api, in_review):
    response = post(api, in_review, "pip-audit", (REPORTS / "pip-audit-requests.json").read_bytes())
    assert response.status_code == 201
    finding = Finding.objects.get(rule_id="CVE-2024-47081")
    assert finding.kind == "dependency" and finding.data["aliases"] == ["GHSA-9hjg-9r4m-mvj7"]


def test_sbom_components_are_matched_against_advisories(api, in_review):
    call_command("import_advisories", str(Path(__file__).resolve().parents[1] / "fixtures" / "osv"), stdout=StringIO())
    sbom = json.loads((REPORTS / "cyclonedx-env-1.5.json").read_bytes())
    for component in sbom["components"]:  # the real SBOM, with requests pinned back to a vulnerable release
        if component["name"] == "requests":
            component["version"] = "2.30.0"
            component["purl"] = "pkg:pypi/requests@2.30.0"
    response = post(api, in_review, "cyclonedx", json.dumps(sbom).encode())
    assert response.status_code == 201, response.json()
    assert response.json()["summary"]["components"] == len(sbom["components"])
    assert set(Finding.objects.values_list("rule_id", flat=True)) & {"GHSA-j8r2-6x86-q33q", "PYSEC-2023-74"}


def vex_about(cve: str, purl: str) -> bytes:
    """CycloneDX's own VEX example (not_affected, code_not_reachable), about another CVE."""
    vex = json.loads((REPORTS / "cyclonedx-bom-examples" / "vex.json").read_bytes())
    vex["vulnerabilities"][0]["id"] = cve
    vex["vulnerabilities"][0]["affects"] = [{"ref": purl}]
    return json.dumps(vex).encode()


def test_a_reviewers_vex_triages_the_versions_existing_findings(api, in_review, security):
    post(api, in_review, "pip-audit", (REPORTS / "pip-audit-requests.json").read_bytes())
    reviewer = APIClient()
    reviewer.force_authenticate(security)
    response = post(reviewer, in_review, "cyclonedx", vex_about("CVE-2024-47081", "pkg:pypi/requests@2.32.3"))
    assert response.status_code == 201, response.json()
    finding = Finding.objects.get(rule_id="CVE-2024-47081")
    assert finding.triage == "false_positive"
    trail = FindingTriage.objects.get(finding=finding)
    assert trail.actor == security and trail.reason.startswith("VEX: ") and "code_not_reachable" in trail.reason


def test_the_vendors_vex_cannot_dismiss_existing_findings(api, in_review):
    post(api, in_review, "pip-audit", (REPORTS / "pip-audit-requests.json").read_bytes())
    response = post(api, in_review, "cyclonedx", vex_about("CVE-2024-47081", "pkg:pypi/requests@2.32.3"))
    assert response.status_code == 201
    assert Finding.objects.get(rule_id="CVE-2024-47081").triage == "open"
    assert not FindingTriage.objects.exists()


@pytest.mark.parametrize(
    ("fmt", "content", "message"),
    [
        ("sarif", (REPORTS / "bandit.sarif").read_bytes()[:5000], "not JSON"),
        ("sarif", (REPORTS / "cyclonedx-env-1.5.json").read_bytes(), "this is a CycloneDX document, not SARIF"),
        ("cyclonedx", (REPORTS / "cyclonedx-env-1.2.json").read_bytes(), "specVersion 1.2 is not supported"),
        ("pip-audit", b"   \n", "report is empty"),
        ("pip-audit", b"[1, 2, 3]", "pip-audit"),
        ("performance", b'{"warden_performance": 2, "metrics": []}', "warden_performance must be 1"),
        ("performance", b'{"warden_performance": 1, "metrics": []}', "metrics is empty"),
        ("performance", b'{"warden_performance": 1, "metrics": [{"kpi": "fun", "value": 1}]}', "metrics[0].kpi"),
        ("performance", b'{"warden_performance": 1, "metrics": [{"kpi": "cpu_ms", "value": -1}]}', "between 0"),
        ("performance", b'{"warden_performance": 1, "metrics": [{"kpi": "cpu_ms", "value": true}]}', "a number"),
        (
            "performance",
            b'{"warden_performance": 1, "metrics": [{"kpi": "cpu_ms", "value": 1}, {"kpi": "cpu_ms", "value": 2}]}',
            "repeats cpu_ms",
        ),
        ("sarif", (REPORTS / "performance.json").read_bytes(), "this is a performance JSON document, not SARIF"),
    ],
)
def test_bad_reports_are_400s_that_change_nothing(api, in_review, fmt, content, message):
    before = (CheckRun.objects.count(), Finding.objects.count(), AuditEvent.objects.count(), stored_reports())
    response = post(api, in_review, fmt, content)
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid_report" and message in body["detail"]
    assert body["errors"][0]["field"] == "report"
    assert (CheckRun.objects.count(), Finding.objects.count(), AuditEvent.objects.count(), stored_reports()) == before


def test_a_performance_report_becomes_metrics_judged_against_the_budget(api, in_review):
    from governance.models import HostPlatform
    from reviews.models import PerformanceBudget

    host, _ = HostPlatform.objects.get_or_create(is_default=True, defaults={"name": "Host", "api_version": "2.4"})
    PerformanceBudget.objects.create(
        host_platform=host, category="data-connector", startup_ms=300, latency_p95_ms=20, throughput_rps=1000
    )

    response = post(api, in_review, "performance", (REPORTS / "performance.json").read_bytes())

    assert response.status_code == 201, response.json()
    run = CheckRun.objects.get(pk=response.json()["id"])
    assert (run.check_key, run.tool, run.tool_version, run.status) == (
        "external.performance",
        "locust",
        "2.31.8",
        "failed",
    )
    metrics = {(m.kpi, m.concurrency): m for m in run.metrics.all()}
    assert len(metrics) == 5
    assert metrics[("startup_ms", None)].within_budget is True
    assert metrics[("latency_p95_ms", 16)].within_budget is False and metrics[("latency_p95_ms", 16)].budget == 20
    assert metrics[("latency_p95_ms", 4)].budget is None  # budgets hold at the peak concurrency
    assert metrics[("throughput_rps", 16)].within_budget is False
    assert {f.title for f in run.findings.all()} == {
        "Latency p95 at 16 threads is 41 ms; the budget is at most 20",
        "Throughput at 16 threads is 850 calls/s; the budget is at least 1000",
    }
    assert run.findings.get(rule_id="performance.budget", data__kpi="latency_p95_ms").severity == "high"


def test_unknown_format_and_oversized_report(api, in_review, settings):
    response = post(api, in_review, "junit", b"<xml/>")
    assert (response.status_code, response.json()["code"]) == (400, "invalid")
    settings.WARDEN_MAX_REPORT_BYTES = 1024
    response = post(api, in_review, "sarif", (REPORTS / "bandit.sarif").read_bytes())
    assert (response.status_code, response.json()["errors"][0]["code"]) == (400, "too_large")
    assert not CheckRun.objects.filter(origin="external").exists()


def test_who_may_post(in_review, other_author, security, outsider):
    client = APIClient()
    sarif = (REPORTS / "bandit.sarif").read_bytes()
    for user in (other_author, outsider):
        client.force_authenticate(user)
        assert post(client, in_review, "sarif", sarif).status_code == 404
    client.force_authenticate(security)  # reviews this version's security stage
    assert post(client, in_review, "sarif", sarif).status_code == 201


def test_a_closed_version_takes_no_reports(api, in_review, author):
    from submissions.services import version_withdraw

    version_withdraw(version=in_review, actor=author, reason="Replaced.")
    before = stored_reports()
    response = post(api, in_review, "sarif", (REPORTS / "bandit.sarif").read_bytes())
    assert (response.status_code, response.json()["code"]) == (409, "invalid_transition")
    assert not CheckRun.objects.filter(origin="external").exists()
    assert stored_reports() == before


def test_a_posted_finding_never_shares_a_fingerprint_with_wardens_own(api, in_review):
    """A poster chooses tool, rule, path and code: copying those of a Warden finding must not make
    the two one finding (an exemption for the harmless-looking copy would hide the real one)."""
    from reviews.importers import parse_report

    sarif = {
        "version": "2.1.0",
        "runs": [
            {
                "tool": {"driver": {"name": "warden-sandbox"}},
                "results": [
                    {
                        "ruleId": "behaviour.credential-access",
                        "level": "note",
                        "message": {"text": "Unused import (cosmetic)"},
                        "locations": [{"physicalLocation": {"artifactLocation": {"uri": "probe.py"}}}],
                    }
                ],
            }
        ],
    }
    content = json.dumps(sarif).encode()
    (copied,) = parse_report("sarif", content).findings

    response = post(api, in_review, "sarif", content)

    assert response.status_code == 201
    stored = Finding.objects.get(check_run_id=response.json()["id"])
    assert stored.fingerprint != copied.fingerprint


def test_an_authors_report_does_not_replace_a_reviewers_report_of_the_same_tool(api, in_review, security):
    from reviews.selectors import latest_runs

    reviewer = APIClient()
    reviewer.force_authenticate(security)
    theirs = post(reviewer, in_review, "sarif", (REPORTS / "bandit.sarif").read_bytes())
    empty = {"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "Bandit"}}, "results": []}]}
    ours = post(api, in_review, "sarif", json.dumps(empty).encode())
    again = post(api, in_review, "sarif", json.dumps(empty, indent=2).encode())  # a new report (same bytes: unchanged)

    assert (theirs.status_code, ours.status_code, again.status_code) == (201, 201, 201)
    current = {run.pk for run in latest_runs(CheckRun.objects.filter(version=in_review))}
    assert theirs.json()["id"] in current  # the reviewer's findings still speak for the version
    assert again.json()["id"] in current and ours.json()["id"] not in current  # the author's own re-post does
