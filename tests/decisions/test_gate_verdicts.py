"""The gate's three verdicts through the API: pending, fail and pass, exactly when they hold.

A check that has not run is never a check that passed, so the gate is ``pending`` until every
check of the current round has finished, and ``fail`` once the review ended without a pass.
"""

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from governance.models import AllowedLicence, HostPlatform
from reviews import services as review
from reviews.models import CheckRun
from reviews.tasks import start_review
from submissions.samples import plugin_archive
from tests.conftest import current_review, open_review, token_key
from tests.decisions.test_gate import sarif
from tests.decisions.test_policies import add_run, load, policy_yaml

pytestmark = pytest.mark.django_db


@pytest.fixture
def policies(tmp_path):
    load(
        tmp_path,
        critical=policy_yaml("no-critical", "findings.open.critical == 0", severity="critical"),
        complete=policy_yaml("checks-complete", 'checks.all(k, checks[k] in ["succeeded", "failed"])'),
    )


@pytest.fixture
def eligible():
    HostPlatform.objects.get_or_create(name="Test host", defaults={"api_version": "2.4", "is_default": True})
    AllowedLicence.objects.get_or_create(spdx_id="MIT")


def gate(client, version, wait: bool = False) -> dict:
    response = client.get(f"/api/v1/versions/{version.pk}/gate/" + ("?wait=true" if wait else ""))
    assert response.status_code == 200
    return response.json()


def test_a_draft_with_no_check_run_is_pending(client, policies, draft, author):
    assert not CheckRun.objects.filter(version=draft).exists()
    client.force_login(author)
    body = gate(client, draft)
    assert body["verdict"] == "pending"
    assert [r["code"] for r in body["reasons"]] == ["not_in_review"]
    assert body["policies"] == []


def test_right_after_upload_the_gate_is_pending_until_intake_has_run_every_check(
    client, policies, pipeline, eligible, plugin, author, django_capture_on_commit_callbacks
):
    """The race: CI uploads and asks at once, before the worker has started the review."""
    client.force_login(author)
    upload = client.post(
        f"/api/v1/plugins/{plugin.pk}/versions/",
        {"artifact": SimpleUploadedFile("a.zip", plugin_archive(plugin.name, "1.0.0").read())},
    )
    assert upload.status_code == 201 and upload.json()["status"] == "submitted"
    version_id = upload.json()["id"]
    from submissions.models import PluginVersion

    version = PluginVersion.objects.get(pk=version_id)
    assert gate(client, version)["verdict"] == "pending"  # nothing queued yet: not a pass

    start_review(version_id)  # the worker starts the round; its checks are queued, not run
    queued = gate(client, version)
    assert queued["verdict"] == "pending"
    assert {w["status"] for w in queued["waiting_for"]} == {"queued"}
    assert {w["check"] for w in queued["waiting_for"]} >= {"eligibility.manifest", "eligibility.pinned"}
    assert queued["reasons"][0]["code"] == "checks_unfinished"

    with django_capture_on_commit_callbacks(execute=True):  # the worker runs them
        for run in CheckRun.objects.filter(version=version, status="queued"):
            from reviews.tasks import run_check

            run_check(run.pk)
    body = gate(client, version)
    assert (body["verdict"], body["waiting_for"], body["policies"]) == ("pass", [], [])


def test_a_later_stage_whose_checks_are_not_queued_yet_keeps_the_gate_pending(
    client, policies, full_pipeline, eligible, draft, author, django_capture_on_commit_callbacks
):
    """Eligibility is still in progress: the security and performance checks have not run."""
    from submissions import services as sub

    full_pipeline["eligibility"].auto_pass = False  # a human looks at eligibility first
    full_pipeline["eligibility"].save()
    with django_capture_on_commit_callbacks(execute=True):
        sub.version_submit(version=draft, actor=author)
    assert current_review(draft, "security").status == "pending"
    client.force_login(author)
    body = gate(client, draft)
    assert body["verdict"] == "pending"
    waiting = {w["check"]: w["status"] for w in body["waiting_for"]}
    assert waiting["security.bandit"] == waiting["performance.harness"] == "not_run"
    # and every policy over check results sees "not run" as a violation, not as a pass
    rows = {r["key"]: r for r in body["evaluated"]}
    assert rows["no-critical"]["outcome"] == "violation"
    assert "security.bandit (not_run)" in rows["no-critical"]["error"]


def test_an_errored_check_fails_the_gate(client, policies, make_awaiting, author):
    version = make_awaiting("1.0.0")
    add_run(version, "security.behaviour", "errored")
    client.force_login(author)
    body = gate(client, version)
    assert body["verdict"] == "fail"
    assert [p["key"] for p in body["policies"]] == ["checks-complete", "no-critical"]


def test_a_failed_eligibility_stage_fails_the_gate_although_security_never_ran(
    client, policies, pipeline, draft, author, platform_admin, django_capture_on_commit_callbacks
):
    from submissions import services as sub

    with django_capture_on_commit_callbacks(execute=True):  # no host platform, no allowed licence
        sub.version_submit(version=draft, actor=author)
    review.stage_fail(review=open_review(draft, "eligibility"), actor=platform_admin, reason="Licence not allowed.")
    draft.refresh_from_db()
    assert draft.status == "rejected"
    assert current_review(draft, "security").status == "cancelled"
    client.force_login(author)
    body = gate(client, draft)
    assert body["verdict"] == "fail"
    assert body["reasons"] == [
        {"code": "stage_failed", "detail": "Blocking stage Eligibility failed: Licence not allowed."}
    ]


def test_changes_requested_fail_the_gate_until_the_author_resubmits(
    client, policies, pipeline, eligible, draft, author, security, django_capture_on_commit_callbacks
):
    from submissions import services as sub

    with django_capture_on_commit_callbacks(execute=True):
        sub.version_submit(version=draft, actor=author)
    review.stage_request_changes(review=open_review(draft, "security"), actor=security, reason="Pin requests.")
    client.force_login(author)
    body = gate(client, draft)
    assert body["verdict"] == "fail" and body["reasons"][0]["code"] == "changes_requested"


def test_wait_gives_up_when_the_verdict_stays_pending_and_says_so(client, settings, policies, draft, author):
    settings.WARDEN_GATE_WAIT_SECONDS = 0.2
    client.force_login(author)
    body = gate(client, draft, wait=True)
    assert body["verdict"] == "pending"
    assert body["wait"]["gave_up"] is True and body["wait"]["waited_seconds"] >= 0.2
    assert body["wait"]["limit_seconds"] == 0.2


def test_wait_answers_at_once_when_the_verdict_is_known(client, policies, make_awaiting, author):
    version = make_awaiting("1.0.0")
    client.force_login(author)
    body = gate(client, version, wait=True)
    assert body["verdict"] == "pass" and body["wait"]["gave_up"] is False
    posted = client.post(
        f"/api/v1/versions/{version.pk}/reports/?wait=true",
        {"format": "sarif", "report": SimpleUploadedFile("a.sarif", sarif("9.8"))},
    ).json()
    assert posted["gate"]["verdict"] == "fail" and posted["gate"]["wait"]["gave_up"] is False


SCRIPT = Path(__file__).resolve().parents[2] / "docs" / "examples" / "ci-gate.sh"


@pytest.mark.skipif(not (shutil.which("curl") and shutil.which("jq")), reason="the CI snippet needs curl and jq")
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_documented_ci_snippet_exits_on_each_verdict(live_server, settings, policies, make_awaiting, draft, author):
    """docs/examples/ci-gate.sh, run as a CI job would run it, against the live test server."""
    settings.WARDEN_GATE_WAIT_SECONDS = 0.2
    token = token_key(author, "submit", "report")
    passing = make_awaiting("1.0.0")
    failing = make_awaiting("1.0.1")
    add_run(failing, "security.behaviour", "errored")
    env = {"PATH": os.environ["PATH"], "WARDEN_API": f"{live_server.url}/api/v1", "WARDEN_TOKEN": token}

    def run(version) -> subprocess.CompletedProcess:
        return subprocess.run(  # noqa: S603 - our own script
            ["/bin/sh", str(SCRIPT), str(version.pk)],
            env={**env, "WARDEN_GATE_DEADLINE": "0"},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    assert (run(passing).returncode, run(failing).returncode, run(draft).returncode) == (0, 1, 2)
    assert "[checks-complete]" in run(failing).stdout
    assert "still pending" in run(draft).stdout


JOB = SCRIPT.with_name("ci-job.sh")
REPORTS = Path(__file__).resolve().parents[1] / "fixtures" / "reports"


@pytest.mark.skipif(not (shutil.which("curl") and shutil.which("jq")), reason="the CI job needs curl and jq")
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_documented_ci_job_submits_reports_and_fails_on_the_gate(
    live_server, settings, tmp_path, pipeline, eligible, plugin, author, acme
):
    """docs/examples/ci-job.sh as a vendor's CI runs it: a draft and its submission with a
    token of scope submit, the job's SARIF with a token of scope report, then the gate; a
    policy the report violates makes the job fail. Each token alone cannot do the other's part."""
    load(
        tmp_path,
        high=policy_yaml("no-open-high", "findings.open.high == 0", severity="high"),
        complete=policy_yaml("checks-complete", 'checks.all(k, checks[k] in ["succeeded", "failed"])'),
    )
    settings.WARDEN_GATE_WAIT_SECONDS = 1
    artifact = tmp_path / "acme.zip"
    artifact.write_bytes(plugin_archive(plugin.name, "2.0.0").read())
    submit, report = token_key(author, "submit", organisation=acme), token_key(author, "report", organisation=acme)
    env = {"PATH": os.environ["PATH"], "WARDEN_API": f"{live_server.url}/api/v1", "WARDEN_GATE_DEADLINE": "60"}

    def job(submit_token: str, report_token: str) -> subprocess.CompletedProcess:
        return subprocess.run(  # noqa: S603 - our own script
            ["/bin/sh", str(JOB), str(plugin.pk), str(artifact), str(REPORTS / "bandit-acme-shell.sarif")],
            env={**env, "WARDEN_SUBMIT_TOKEN": submit_token, "WARDEN_REPORT_TOKEN": report_token},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    crossed = job(report, submit)  # the tokens swapped: the upload is refused, nothing is created
    assert crossed.returncode == 22 and "do not include 'submit'" in crossed.stdout, crossed
    assert not plugin.versions.filter(version="2.0.0").exists()

    ran = job(submit, report)
    assert ran.returncode == 1, (ran.stdout, ran.stderr)
    assert "draft" in ran.stdout and "submitted" in ran.stdout and "report attached" in ran.stdout
    assert "fails the gate" in ran.stdout and "[no-open-high]" in ran.stdout
