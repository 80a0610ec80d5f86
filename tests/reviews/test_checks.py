"""The check engine and the eligibility checks, run as a worker would run them."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from governance.audit import audit_verify
from governance.errors import PermissionRefused, TransitionRefused, ValidationFailed
from governance.models import AllowedLicence, HostPlatform
from reviews import services as review
from reviews.checks import REGISTRY, CheckOutcome, CheckSpec
from reviews.checks.engine import check_run_execute, check_runs_requeue_stale
from reviews.findings_data import FindingData
from reviews.models import CheckRun, Finding, FindingTriage, ReviewStatus, RunStatus
from submissions import services as sub
from submissions.samples import MANIFEST_TEMPLATE, plugin_archive
from tests.conftest import current_review, open_review

pytestmark = pytest.mark.django_db


@pytest.fixture
def eligible_platform():
    HostPlatform.objects.create(name="Acme Cloud", api_version="2.4", is_default=True)
    AllowedLicence.objects.create(spdx_id="MIT")


def submit(plugin, author, capture, number="1.0.0", **archive):
    version = sub.version_create(plugin=plugin, artifact=plugin_archive(plugin.name, number, **archive), actor=author)
    with capture(execute=True):
        sub.version_submit(version=version, actor=author)
    version.refresh_from_db()
    return version


def runs(version) -> dict[str, CheckRun]:
    return {run.check_key: run for run in version.check_runs.all()}


# -- eligibility -----------------------------------------------------------------------


def test_clean_plugin_passes_eligibility_on_its_own(
    plugin, author, pipeline, eligible_platform, django_capture_on_commit_callbacks
):
    version = submit(plugin, author, django_capture_on_commit_callbacks)
    assert {key: run.status for key, run in runs(version).items()} == dict.fromkeys(
        pipeline["eligibility"].checks, RunStatus.SUCCEEDED
    )
    eligibility = current_review(version, "eligibility")
    assert eligibility.status == ReviewStatus.PASSED
    assert eligibility.decided_by is None and eligibility.decision_reason == "All 6 automated checks passed."
    assert open_review(version, "security").status == ReviewStatus.IN_PROGRESS
    assert not Finding.objects.exists()


def manifest_with(**replacements: str) -> str:
    text = MANIFEST_TEMPLATE.format(
        name="acme-exporter", version="1.0.0", module="acme_exporter", category="data-connector"
    )
    for old, new in replacements.items():
        assert old in text
        text = text.replace(old, new)
    return text


@pytest.mark.parametrize(
    ("archive", "check", "title"),
    [
        (
            {"manifest": manifest_with(**{'host_api = ">=2.0,<3"': 'host_api = ">=3"'})},
            "eligibility.host_api",
            "host_api '>=3' excludes Acme Cloud's API 2.4",
        ),
        (
            {"manifest": manifest_with(**{'license = "MIT"': 'license = "GPL-3.0-only"'})},
            "eligibility.licence",
            "Licence 'GPL-3.0-only' is not on the allow list",
        ),
        (
            {"files": {"docs/USAGE.md": b"# Usage\n\nTODO\n"}},
            "eligibility.docs",
            "docs.usage: docs/USAGE.md is too short",
        ),
        (
            {
                "manifest": manifest_with(
                    **{'usage = "docs/USAGE.md"': 'usage = "docs/USAGE.md"\nrunbook = "docs/RUN.md"'}
                )
            },
            "eligibility.docs",
            "docs.runbook: docs/RUN.md is missing",
        ),
        (
            {"files": {"acme_exporter/broken.py": b"def f(:\n    pass\n"}},
            "eligibility.compile",
            "acme_exporter/broken.py does not compile",
        ),
        (
            {"manifest": manifest_with(**{"requirements = []": 'requirements = ["requests>=2", "pyyaml==6.0.1"]'})},
            "eligibility.pinned",
            "'requests>=2' is not pinned with ==",
        ),
    ],
)
def test_each_eligibility_failure_is_a_finding_and_holds_the_stage(
    plugin, author, pipeline, eligible_platform, django_capture_on_commit_callbacks, archive, check, title
):
    version = submit(plugin, author, django_capture_on_commit_callbacks, **archive)
    failed = {key: run for key, run in runs(version).items() if run.status != RunStatus.SUCCEEDED}
    assert list(failed) == [check]
    assert failed[check].status == RunStatus.FAILED
    assert [f.title for f in failed[check].findings.all()] == [title]
    assert open_review(version, "eligibility").status == ReviewStatus.IN_PROGRESS


def test_no_default_host_platform_fails_host_api(plugin, author, pipeline, django_capture_on_commit_callbacks):
    version = submit(plugin, author, django_capture_on_commit_callbacks)
    finding = runs(version)["eligibility.host_api"].findings.get()
    assert finding.title == "No default host platform is configured"


# -- the engine ------------------------------------------------------------------------


def install_check(monkeypatch, stage, key: str, run, *, tool: str = "test", auto_pass: bool | None = None) -> None:
    """Register a check for this test only and make ``stage`` run it (and nothing else)."""
    monkeypatch.setitem(REGISTRY, key, CheckSpec(key=key, title=key, tool=tool, run=run))
    stage.checks = [key]
    if auto_pass is not None:
        stage.auto_pass = auto_pass
    stage.save()


@pytest.fixture
def flaky_check(monkeypatch, pipeline):
    """A check whose findings stream breaks half-way on its first run, as a dying worker would."""
    calls = {"n": 0}

    def findings():
        for i in range(10):
            if calls["n"] == 1 and i == 5:
                raise ConnectionError("worker lost")
            yield FindingData(rule_id=f"T{i}", title=f"finding {i}", severity="low", tool="test", path=f"f{i}.py")

    def run(ctx):
        calls["n"] += 1
        return CheckOutcome(passed=True, findings=findings(), report=b'{"ok": true}')

    install_check(monkeypatch, pipeline["security"], "test.flaky", run, tool="test")
    return calls


def test_a_lost_run_is_retried_and_leaves_exactly_one_set_of_findings(
    in_review, platform_admin, security, flaky_check, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):  # the worker has not picked it up yet
        review.stage_pass(review=open_review(in_review, "eligibility"), actor=platform_admin)
    run = in_review.check_runs.get(check_key="test.flaky")
    assert run.status == RunStatus.QUEUED

    with pytest.raises(ConnectionError):
        check_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert (run.status, run.attempts, run.findings.count()) == (RunStatus.RUNNING, 1, 0)
    assert not run.report

    with pytest.raises(TransitionRefused, match=r"cannot pass while checks are running: test\.flaky"):
        review.stage_pass(review=open_review(in_review, "security"), actor=security)

    with time_machine.travel(timezone.now() + timedelta(hours=1)), django_capture_on_commit_callbacks(execute=True):
        assert check_runs_requeue_stale() == 1  # the sweeper hands it out again (sync in tests)
    run.refresh_from_db()
    assert (run.status, run.attempts) == (RunStatus.SUCCEEDED, 2)
    assert sorted(run.findings.values_list("rule_id", flat=True)) == [f"T{i}" for i in range(10)]
    assert run.report.read() == b'{"ok": true}'

    assert check_run_execute(run_id=run.pk) is None  # a duplicate delivery changes nothing
    assert run.findings.count() == 10


def test_a_check_that_breaks_is_errored_and_can_be_re_run(
    in_review, monkeypatch, pipeline, platform_admin, security, django_capture_on_commit_callbacks
):
    outcomes = [RuntimeError("tool crashed"), CheckOutcome(passed=True)]

    def run(ctx):
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    install_check(monkeypatch, pipeline["security"], "test.crash", run, tool="test")
    with django_capture_on_commit_callbacks(execute=True):
        review.stage_pass(review=open_review(in_review, "eligibility"), actor=platform_admin)
    crashed = in_review.check_runs.get(check_key="test.crash")
    assert crashed.status == RunStatus.ERRORED
    assert crashed.error == "RuntimeError: tool crashed"

    with pytest.raises(PermissionRefused):
        review.check_run_rerun(run=crashed, actor=platform_admin.__class__.objects.get(username="acme-author"))
    with django_capture_on_commit_callbacks(execute=True):
        review.check_run_rerun(run=crashed, actor=security)
    crashed.refresh_from_db()
    assert (crashed.status, crashed.error, crashed.attempts) == (RunStatus.SUCCEEDED, "", 1)
    assert audit_verify().ok


def test_findings_seen_in_the_last_approved_version_are_carried_over(
    make_approved, plugin, author, monkeypatch, pipeline, django_capture_on_commit_callbacks
):
    def run(ctx):
        found = [
            FindingData(
                rule_id="B602",
                title="shell",
                severity="high",
                path="acme_exporter/plugin.py",
                snippet="subprocess.call(cmd, shell=True)",
                tool="bandit",
            )
        ]
        if ctx.manifest["plugin"]["version"] == "1.1.0":
            found.append(
                FindingData(
                    rule_id="B506",
                    title="yaml.load",
                    severity="medium",
                    path="x.py",
                    snippet="yaml.load(data)",
                    tool="bandit",
                )
            )
        return CheckOutcome(passed=True, findings=found)

    install_check(monkeypatch, pipeline["eligibility"], "test.scan", run, tool="bandit", auto_pass=False)
    make_approved("1.0.0")
    newer = submit(plugin, author, django_capture_on_commit_callbacks, number="1.1.0")
    carried = dict(newer.findings.values_list("rule_id", "carried_over"))
    assert carried == {"B602": True, "B506": False}


def test_triage_is_recorded_with_who_and_why(
    in_review,
    security,
    performance,
    author,
    monkeypatch,
    pipeline,
    platform_admin,
    django_capture_on_commit_callbacks,
):
    def run(ctx):
        return CheckOutcome(passed=False, findings=[FindingData(rule_id="X1", title="x", severity="high")])

    install_check(monkeypatch, pipeline["security"], "test.one", run, tool="test")
    with django_capture_on_commit_callbacks(execute=True):
        review.stage_pass(review=open_review(in_review, "eligibility"), actor=platform_admin)
    finding = Finding.objects.get(rule_id="X1")

    with pytest.raises(ValidationFailed, match="needs the plan and a due date"):
        review.finding_triage(finding=finding, actor=security, to_state="remediation_planned", reason="Will fix")
    for outsider in (author, performance):  # the submitter; a reviewer of another stage
        with pytest.raises(PermissionRefused, match="does not review the stage that owns this finding"):
            review.finding_triage(finding=finding, actor=outsider, to_state="false_positive", reason="Not a bug")
    due = timezone.now().date() + timedelta(days=30)
    review.finding_triage(
        finding=finding,
        actor=security,
        to_state="remediation_planned",
        reason="Real issue",
        plan="Drop shell=True",
        plan_due=due,
    )
    finding.refresh_from_db()
    assert (finding.triage, finding.plan, finding.plan_due) == ("remediation_planned", "Drop shell=True", due)
    trail = FindingTriage.objects.get(finding=finding)
    assert (trail.actor, trail.from_state, trail.to_state, trail.reason) == (
        security,
        "open",
        "remediation_planned",
        "Real issue",
    )
    assert audit_verify().ok


# -- in the admin ----------------------------------------------------------------------


def test_reviewer_sees_check_results_inline_and_findings_by_severity(
    client, plugin, author, pipeline, eligible_platform, board, other_author, django_capture_on_commit_callbacks
):
    from django.urls import reverse

    version = submit(
        plugin, author, django_capture_on_commit_callbacks, files={"acme_exporter/broken.py": b"def f(:\n"}
    )
    eligibility = current_review(version, "eligibility")
    client.force_login(board)
    page = client.get(reverse("admin:reviews_stagereview_change", args=[eligibility.pk])).content.decode()
    assert "eligibility.compile" in page and "1 high" in page
    from reviews.selectors import finding_counts

    counts = {row["severity"]: row for row in finding_counts(version=version)}
    assert (counts["high"]["open"], counts["high"]["total"], counts["medium"]["total"]) == (1, 1, 0)
    page = client.get(reverse("admin:submissions_pluginversion_change", args=[version.pk])).content.decode()
    assert "<h2>Findings</h2>" in page and "severity__exact=high" in page
    findings = client.get(reverse("admin:reviews_finding_changelist") + f"?version__id__exact={version.pk}")
    assert [f.rule_id for f in findings.context["cl"].result_list] == ["eligibility.compile"]

    client.force_login(other_author)
    assert client.get(reverse("admin:reviews_finding_changelist")).context["cl"].result_count == 0
    assert client.get(reverse("admin:reviews_checkrun_changelist")).context["cl"].result_count == 0


def test_run_again_from_the_admin(client, plugin, author, pipeline, platform_admin, django_capture_on_commit_callbacks):
    from django.urls import reverse

    version = submit(plugin, author, django_capture_on_commit_callbacks)
    run = runs(version)["eligibility.licence"]
    assert run.status == RunStatus.FAILED
    AllowedLicence.objects.create(spdx_id="MIT")
    client.force_login(platform_admin)
    url = reverse("admin:reviews_checkrun_act", args=[run.pk, "rerun"])
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, {}, follow=True)
    assert "Run again: done" in response.content.decode()
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED
    assert not run.findings.exists()


def test_a_re_run_keeps_the_triage_and_its_trail(
    in_review, security, monkeypatch, pipeline, platform_admin, django_capture_on_commit_callbacks
):
    def run(ctx):
        return CheckOutcome(
            passed=False,
            findings=[
                FindingData(rule_id="X1", title="x", severity="high", snippet="eval(data)"),
                FindingData(rule_id="X2", title="y", severity="low", snippet="md5()"),
            ],
        )

    install_check(monkeypatch, pipeline["security"], "test.two", run, tool="test")
    with django_capture_on_commit_callbacks(execute=True):
        review.stage_pass(review=open_review(in_review, "eligibility"), actor=platform_admin)
    finding = Finding.objects.get(rule_id="X1")
    review.finding_triage(finding=finding, actor=security, to_state="false_positive", reason="Input is constant.")
    run_row = finding.check_run
    with django_capture_on_commit_callbacks(execute=True):
        review.check_run_rerun(run=run_row, actor=security)
    again = Finding.objects.get(rule_id="X1")
    assert again.pk != finding.pk and again.triage == "false_positive"
    assert [t.reason for t in again.triage_trail.all()] == ["Input is constant."]
    assert Finding.objects.get(rule_id="X2").triage == "open"
    assert Finding.objects.filter(check_run__check_key="test.two").count() == 2


def test_a_queued_run_whose_task_was_lost_is_handed_out_again(
    in_review, platform_admin, django_capture_on_commit_callbacks
):
    from governance.models import AllowedLicence, HostPlatform

    HostPlatform.objects.create(name="Host", api_version="2.4", is_default=True)
    AllowedLicence.objects.create(spdx_id="MIT")
    queued = in_review.check_runs.filter(status=RunStatus.QUEUED)
    assert queued.count() == 0  # in_review ran its eligibility checks on commit; queue one by hand
    with django_capture_on_commit_callbacks(execute=False):  # the task is lost: never delivered
        review.check_run_rerun(run=in_review.check_runs.get(check_key="eligibility.licence"), actor=platform_admin)
    assert in_review.check_runs.get(check_key="eligibility.licence").status == RunStatus.QUEUED
    with time_machine.travel(timezone.now() + timedelta(hours=1)), django_capture_on_commit_callbacks(execute=True):
        assert check_runs_requeue_stale() == 1
    assert in_review.check_runs.get(check_key="eligibility.licence").status == RunStatus.SUCCEEDED


def test_tool_output_the_database_would_refuse_is_cleaned(
    in_review, monkeypatch, pipeline, platform_admin, django_capture_on_commit_callbacks
):
    def run(ctx):
        return CheckOutcome(
            passed=True,
            findings=[
                FindingData(
                    rule_id="N\x00UL",
                    title="t\x00",
                    severity="low",
                    message="a\x00b",
                    line=2**40,
                    snippet="x\x00",
                    data={"raw": "z\x00"},
                )
            ],
        )

    install_check(monkeypatch, pipeline["security"], "test.nul", run, tool="test")
    with django_capture_on_commit_callbacks(execute=True):
        review.stage_pass(review=open_review(in_review, "eligibility"), actor=platform_admin)
    finding = Finding.objects.get(check_run__check_key="test.nul")
    assert (finding.rule_id, finding.message, finding.line, finding.data) == (
        "N\ufffdUL",
        "a\ufffdb",
        None,
        {"raw": "z\ufffd"},
    )


def test_counts_speak_for_the_latest_runs_only(
    plugin, author, pipeline, compliance, platform_admin, django_capture_on_commit_callbacks
):
    from reviews.selectors import finding_counts

    version = submit(
        plugin, author, django_capture_on_commit_callbacks, files={"acme_exporter/broken.py": b"def f(:\n"}
    )
    review.stage_pass(review=open_review(version, "eligibility"), actor=platform_admin)
    review.stage_request_changes(review=open_review(version, "compliance"), actor=compliance, reason="More docs.")
    with django_capture_on_commit_callbacks(execute=True):
        sub.version_resubmit(version=version, actor=author, reason="Docs added.")
    assert Finding.objects.filter(version=version, rule_id="eligibility.compile").count() == 2  # one per round
    counts = {row["severity"]: row["total"] for row in finding_counts(version=version)}
    assert counts["high"] == 3  # compile, host API and licence (neither is configured here), once
    assert Finding.objects.filter(version=version, severity="high").count() == 6
