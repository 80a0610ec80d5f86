"""One finding, several sources: re-posted reports and reports of what Warden already found.

``bandit-acme-shell.sarif`` is bandit 1.9.4's own SARIF of ``tests/fixtures/plugins/bandit-bad``
(tests/fixtures/reports/README.md): the same three issues Warden's ``security.bandit`` finds there.
"""

import importlib
import json
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from rest_framework.test import APIClient

from decisions.exemptions import exemption_approve, exemption_request
from decisions.facts import version_facts
from decisions.gate import gate_verdict
from decisions.services import assess_version
from governance.models import AuditEvent
from reviews import services as review
from reviews.checks.bandit_scan import warden_severity
from reviews.findings_data import location_key
from reviews.importers import parse_report
from reviews.models import CheckRun, Finding
from submissions import services as sub
from tests.conftest import open_review, zipped

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SARIF = (FIXTURES / "reports" / "bandit-acme-shell.sarif").read_bytes()


@pytest.fixture
def scanned(acme, author, pipeline, platform_admin, django_capture_on_commit_callbacks):
    """acme-shell in its security stage, where Warden's own bandit check has run."""
    pipeline["security"].checks = ["security.bandit"]
    pipeline["security"].save()
    plugin = sub.plugin_create(organisation=acme, name="acme-shell", category="data-connector", actor=author)
    upload = zipped(FIXTURES / "plugins" / "bandit-bad", "acme-shell")
    version = sub.version_create(plugin=plugin, artifact=upload, actor=author)
    with django_capture_on_commit_callbacks(execute=True):
        sub.version_submit(version=version, actor=author)
    with django_capture_on_commit_callbacks(execute=True):
        review.stage_pass(review=open_review(version, "eligibility"), actor=platform_admin)
    bandit = CheckRun.objects.get(version=version, check_key="security.bandit")
    assert {f.rule_id for f in bandit.findings.all()} == {"B404", "B506", "B602"}
    version.refresh_from_db()
    return version


def client_of(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def post(client, version, content: bytes = SARIF):
    return client.post(
        f"/api/v1/versions/{version.pk}/reports/",
        {"format": "sarif", "report": SimpleUploadedFile("bandit.sarif", content)},
        format="multipart",
    )


def counted(version) -> tuple[dict, str]:
    """What the rating reads about findings, and the rating's total."""
    assessment, _rubric = assess_version(version=version)
    facts = assessment.facts
    return {key: facts[key] for key in ("findings", "capabilities")}, str(assessment.rating.total)


def stored_reports() -> set[str]:
    root = Path(settings.MEDIA_ROOT) / "reports"
    return {str(p) for p in root.rglob("*") if p.is_file()} if root.exists() else set()


def test_the_same_report_posted_twice_is_one_run(scanned, author):
    api = client_of(author)
    first = post(api, scanned)
    assert first.status_code == 201, first.json()
    assert first.json()["unchanged"] is False
    rating = counted(scanned)  # (the first rating installs the default rubric: an audit row of its own)
    before = (CheckRun.objects.count(), Finding.objects.count(), AuditEvent.objects.count(), stored_reports())

    again = post(api, scanned)

    assert again.status_code == 200, again.json()
    body = again.json()
    assert body["unchanged"] is True and body["id"] == first.json()["id"]
    assert body["summary"] == first.json()["summary"]
    assert (CheckRun.objects.count(), Finding.objects.count(), AuditEvent.objects.count(), stored_reports()) == before
    assert counted(scanned) == rating

    changed = post(api, scanned, SARIF.replace(b'"startLine": 22', b'"startLine": 23'))  # the code moved
    assert changed.status_code == 201 and changed.json()["unchanged"] is False
    assert changed.json()["id"] != first.json()["id"]


def test_wardens_bandit_and_a_posted_bandit_sarif_count_each_finding_once(scanned, author):
    without_post = counted(scanned)
    # bandit's B602 (high), B506 (medium), B404 (low); no host platform or licence list: two highs
    assert without_post[0]["findings"]["open"] == {"critical": 0, "high": 3, "medium": 1, "low": 1, "info": 0}

    response = post(client_of(author), scanned)

    assert response.status_code == 201, response.json()
    posted = Finding.objects.filter(check_run_id=response.json()["id"])
    wardens = Finding.objects.filter(check_run__version=scanned, check_run__check_key="security.bandit")
    assert {f.tool for f in posted} == {"Bandit"} and {f.tool for f in wardens} == {"bandit"}
    assert {f.location_key for f in posted} == {f.location_key for f in wardens}
    assert not {f.fingerprint for f in posted} & {f.fingerprint for f in wardens}  # still apart for exemptions
    assert counted(scanned) == without_post


def test_the_same_report_from_two_posters_counts_once(scanned, author, security):
    without_post = counted(scanned)
    assert post(client_of(author), scanned).status_code == 201
    assert post(client_of(security), scanned).status_code == 201  # another poster: a run of its own
    assert CheckRun.objects.filter(version=scanned, origin="external").count() == 2
    assert counted(scanned) == without_post


def test_the_finding_page_shows_every_source(scanned, author, security, client):
    post(client_of(author), scanned)
    b602 = Finding.objects.get(check_run__version=scanned, check_run__check_key="security.bandit", rule_id="B602")
    copy = Finding.objects.get(check_run__version=scanned, check_run__origin="external", rule_id="B602")
    client.force_login(security)

    page = client.get(f"/admin/reviews/finding/{b602.pk}/change/")

    assert page.status_code == 200
    text = page.content.decode()
    assert "Reported by" in text
    assert f"/admin/reviews/finding/{copy.pk}/change/" in text and "posted by acme-author" in text
    assert "security.bandit, Warden" in text and "external.sarif, posted by acme-author" in text


def test_the_report_answer_says_who_else_reports_its_findings(scanned, author):
    response = post(client_of(author), scanned)
    assert response.json()["also_reported_by"] == {"security.bandit": 3}


def test_a_posted_copy_cannot_triage_exempt_or_lower_wardens_finding(scanned, author, security, board):
    without_post = counted(scanned)
    post(client_of(author), scanned)
    copy = Finding.objects.get(check_run__version=scanned, check_run__origin="external", rule_id="B602")
    wardens = Finding.objects.get(check_run__version=scanned, check_run__check_key="security.bandit", rule_id="B602")

    # The copy dismissed and exempted: Warden's finding governs, and still counts.
    review.finding_triage(finding=copy, actor=security, to_state="false_positive", reason="Posted twice.")
    exemption = exemption_request(
        actor=author,
        plugin=scanned.plugin,
        scope="version",
        version=scanned,
        finding=Finding.objects.get(pk=copy.pk),
        justification="The posted copy is harmless.",
        expires_at=timezone.now() + timedelta(days=10),
    )
    exemption_approve(exemption=exemption, actor=board)

    assert counted(scanned) == without_post
    wardens.refresh_from_db()
    assert wardens.triage == "open"
    assert version_facts(version=scanned)["findings"]["exempted"] == 0
    # and the gate lists it as the facts count it: Warden's open finding, with both sources
    gate = gate_verdict(version=scanned)
    [listed] = [f for f in gate["findings"] if f["rule_id"] == "B602"]
    assert (listed["id"], listed["exempted_by"], listed["sources"]) == (
        wardens.pk,
        None,
        ["bandit", copy.check_run.tool],
    )
    assert not [f for f in gate["exempted"]["findings"] if f["rule_id"] == "B602"]

    # Warden's own finding judged by its reviewer: the open copy does not bring it back.
    review.finding_triage(finding=wardens, actor=security, to_state="false_positive", reason="Not reachable.")
    copy.refresh_from_db()
    assert copy.triage == "false_positive"
    review.finding_triage(finding=copy, actor=security, to_state="open", reason="Re-opened the copy.")
    assert version_facts(version=scanned)["findings"]["open"]["high"] == without_post[0]["findings"]["open"]["high"] - 1
    assert not [f for f in gate_verdict(version=scanned)["findings"] if f["rule_id"] == "B602"]


def test_the_migration_computes_the_same_keys_as_the_code():
    migration = importlib.import_module("reviews.migrations.0015_finding_location_and_report_digest")
    for tool, rule, path, line in [
        ("Bandit", "B602", "acme_shell/plugin.py", 22),
        ("Semgrep OSS", "python.lang.security.audit", "./acme_shell-1.4.0/a.py", None),
        ("bandit", "B105", "", 3),
    ]:
        assert migration._location_key(tool, rule, path, line) == location_key(
            tool=tool, rule_id=rule, path=path, line=line
        )
    assert location_key(tool="Bandit", rule_id="B602", path="a.py", line=1) == location_key(
        tool="bandit", rule_id="B602", path="./a.py", line=1
    )


def test_a_place_a_report_names_twice_counts_once_beside_wardens_single_finding(scanned, author):
    """The n-th finding of each source at one place pairs up: Warden found B602 once, the
    report (one named change: its B602 result repeated) twice, so the place counts twice."""
    document = json.loads(SARIF)
    results = document["runs"][0]["results"]
    results.append(next(r for r in results if r["ruleId"] == "B602"))
    without_post = counted(scanned)

    assert post(client_of(author), scanned, json.dumps(document).encode()).status_code == 201

    high = version_facts(version=scanned)["findings"]["open"]["high"]
    assert high == without_post[0]["findings"]["open"]["high"] + 1


def test_a_bandit_sarif_folds_confidence_into_severity_as_wardens_bandit_check_does():
    """Otherwise a posted low-confidence issue would lift the one Warden graded lower."""
    document = json.loads(SARIF)
    b602 = next(r for r in document["runs"][0]["results"] if r["ruleId"] == "B602")
    b602["properties"]["issue_confidence"] = "LOW"  # the one change: bandit unsure of it

    found = {f.rule_id: f for f in parse_report("sarif", json.dumps(document).encode()).findings}

    assert found["B602"].severity == warden_severity("HIGH", "LOW") == "medium"
    assert found["B506"].severity == warden_severity("MEDIUM", "HIGH") == "medium"
