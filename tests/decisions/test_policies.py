"""Policies as code: loading YAML, refusing bad files, versions, evaluation and enforcement."""

from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.urls import reverse

from decisions.facts import version_facts
from decisions.models import Policy, PolicyEvaluation
from decisions.policies import PreparedFacts, compile_policy, evaluate, policies_sync, policy_files_load
from decisions.services import assess_version
from governance.errors import PolicyBlocked, ValidationFailed
from governance.models import AuditEvent
from reviews.models import CheckRun, Finding
from tests.conftest import approve
from tests.decisions.test_rubric import blank_facts

pytestmark = pytest.mark.django_db


def policy_yaml(key: str, expression: str, *, mode: str = "enforce", severity: str = "high", message: str = "") -> str:
    return (
        f"key: {key}\ntitle: {key} title\nseverity: {severity}\nmode: {mode}\n"
        f"message: {message or key + ' violated'}\nexpression: '{expression}'\n"
    )


def load(directory: Path, **files: str):
    """Write ``name=yaml`` files into ``directory`` and sync them."""
    directory.mkdir(exist_ok=True)
    for name, text in files.items():
        (directory / f"{name}.yaml").write_text(text)
    return policies_sync(documents=policy_files_load(directory=directory))


def add_critical(version):
    run = CheckRun.objects.create(version=version, check_key="security.bandit", status="failed")
    return Finding.objects.create(
        check_run=run,
        version=version,
        kind="security",
        severity="critical",
        rule_id="B602",
        title="subprocess with shell=True",
        fingerprint="f" * 64,
    )


def test_an_enforce_policy_blocks_approval_with_its_message_and_a_log_policy_does_not(
    tmp_path, make_awaiting, board, django_capture_on_commit_callbacks
):
    load(
        tmp_path,
        critical=policy_yaml("no-critical", "findings.open.critical == 0", message="Fix the critical findings first."),
        pii=policy_yaml("no-pii", '!("usage" in manifest.data.categories)', mode="log", severity="low"),
    )
    version = make_awaiting("1.0.0")
    add_critical(version)
    evaluations = PolicyEvaluation.objects.count()

    with pytest.raises(PolicyBlocked) as blocked:
        approve(version=version, actor=board, reason="Looks fine.")
    assert blocked.value.code == "policy_violation" and blocked.value.status == 409
    assert "[no-critical] Fix the critical findings first." in blocked.value.detail
    assert "no-pii" not in blocked.value.detail  # log mode never blocks
    version.refresh_from_db()
    assert version.status == "awaiting_decision"
    assert not AuditEvent.objects.filter(action="version.approve", object_id=str(version.pk)).exists()
    # the first attempt named the rating from before the critical finding: refused as
    # facts_changed, it recorded the new evaluation; the policy refusal after it changed nothing
    assert PolicyEvaluation.objects.count() == evaluations + 1

    Finding.objects.filter(version=version).update(triage="false_positive")
    approve(version=version, actor=board, reason="The finding was a false positive.")
    version.refresh_from_db()
    assert version.status == "approved"
    evaluation = PolicyEvaluation.objects.filter(version=version, trigger="approve").order_by("-pk").first()
    outcomes = {r["key"]: (r["outcome"], r["blocks"]) for r in evaluation.results}
    assert evaluation.passed and outcomes == {"no-critical": ("pass", False), "no-pii": ("violation", False)}
    event = AuditEvent.objects.filter(action="policies.evaluate", object_id=str(evaluation.pk)).get()
    assert (event.actor, event.data["passed"], event.data["violations"]) == (board, True, ["no-pii v1 (log)"])


def test_policies_are_evaluated_when_a_version_moves_into_awaiting_decision(tmp_path, make_awaiting):
    load(tmp_path, docs=policy_yaml("runbook", "has(manifest.docs.runbook)", mode="log"))
    version = make_awaiting("1.0.0")
    evaluation = PolicyEvaluation.objects.get(version=version)
    assert (evaluation.trigger, evaluation.passed) == ("awaiting_decision", True)
    assert evaluation.results[0]["outcome"] == "violation"  # the sample plugin has no runbook
    assert evaluation.rating.version == version


def test_a_policy_that_cannot_be_evaluated_fails_closed_in_enforce_mode(tmp_path, make_awaiting, board):
    load(tmp_path, odd=policy_yaml("odd", "manifest.plugin.no_such_field == 1"))
    version = make_awaiting("1.0.0")
    with pytest.raises(PolicyBlocked):
        approve(version=version, actor=board)
    result = PolicyEvaluation.objects.get(version=version).results[0]
    assert result["outcome"] == "error" and "no_such_field" in result["error"]


def test_a_policy_reading_the_rating_runs_after_it(tmp_path, make_awaiting, board):
    load(tmp_path, rating=policy_yaml("rating-below-20", "rating.computed && rating.total < 20.0"))
    version = make_awaiting("1.0.0")
    approve(version=version, actor=board)  # 0 points: passes
    other = make_awaiting("1.0.1", residual_risk="high")
    add_critical(other)  # 25 + 12
    with pytest.raises(PolicyBlocked, match="rating-below-20"):
        approve(version=other, actor=board)


def test_a_policy_file_with_a_syntax_error_is_refused_with_the_compilers_message(tmp_path):
    load(tmp_path, good=policy_yaml("good", "findings.open.critical == 0"))
    (tmp_path / "broken.yaml").write_text(policy_yaml("broken", "findings.open.critical ==="))
    (tmp_path / "good.yaml").write_text(policy_yaml("good", "findings.open.high == 0"))
    with pytest.raises(CommandError) as refused:
        call_command("sync_policies", "--dir", str(tmp_path))
    message = str(refused.value)
    assert message.startswith("Policies refused, nothing was loaded. broken.yaml: expression does not compile: CEL:")
    assert "findings.open.critical ===" in message and "^" in message  # the compiler's pointer at the error
    assert list(Policy.objects.values_list("key", "version", "expression")) == [
        ("good", 1, "findings.open.critical == 0")
    ]  # the good file's change was not loaded either


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("key: [unclosed", "not valid YAML"),
        ("- a list", "one mapping"),
        ("key: x\ntitle: t\nseverity: high\nmode: enforce\nmessage: m\n", "missing: expression"),
        (policy_yaml("x", "true") + "colour: red\n", "unknown fields: colour"),
        (policy_yaml("x", "true", mode="sometimes"), "mode 'sometimes': one of off, log, enforce"),
        (policy_yaml("x", "true", severity="dire"), "severity 'dire'"),
        (policy_yaml("Bad Key", "true"), "key 'Bad Key'"),
    ],
)
def test_bad_policy_files_are_refused_and_change_nothing(tmp_path, text, expected):
    (tmp_path / "p.yaml").write_text(text)
    with pytest.raises(ValidationFailed) as refused:
        policy_files_load(directory=tmp_path)
    assert expected in refused.value.detail and refused.value.errors[0]["field"] == "p.yaml"
    assert not Policy.objects.exists()


def test_sync_versions_changed_files_retires_removed_ones_and_dry_runs(tmp_path, capsys):
    report = load(tmp_path, a=policy_yaml("a", "true"), b=policy_yaml("b", "true", mode="log"))
    assert (report.created, report.retired) == (["a v1", "b v1"], [])
    (tmp_path / "a.yaml").write_text(policy_yaml("a", "findings.open.high == 0"))
    (tmp_path / "b.yaml").unlink()

    call_command("sync_policies", "--dir", str(tmp_path), "--dry-run")
    assert "Would load 1, retire 1, unchanged 0." in capsys.readouterr().out
    assert Policy.objects.filter(is_current=True).count() == 2

    call_command("sync_policies", "--dir", str(tmp_path), verbosity=2)
    out = capsys.readouterr().out
    assert "Loaded 1, retired 1, unchanged 0." in out and "new: a v2" in out and "retired: b v1" in out
    rows = {(p.key, p.version): (p.is_current, p.expression) for p in Policy.objects.all()}
    assert rows == {
        ("a", 1): (False, "true"),
        ("a", 2): (True, "findings.open.high == 0"),
        ("b", 1): (False, "true"),
    }
    assert AuditEvent.objects.filter(action="policy.retire").count() == 2  # a v1 superseded, b v1 removed

    call_command("sync_policies", "--dir", str(tmp_path))
    assert "Loaded 0, retired 0, unchanged 1." in capsys.readouterr().out


def test_the_shipped_policies_load(capsys):
    call_command("sync_policies")
    files = sorted(Path(settings.WARDEN_POLICY_DIR).glob("*.yaml"))
    assert Policy.objects.filter(is_current=True).count() == len(files) >= 8
    assert set(Policy.objects.values_list("source", flat=True)) == {f.name for f in files}


def test_the_transpiled_programs_agree_with_the_interpreter_and_errors_fall_back_to_it(tmp_path):
    documents = policy_files_load(directory=Path(settings.WARDEN_POLICY_DIR))
    documents.append({**documents[0], "key": "null-safe", "expression": "missing == null || missing.x > 1"})
    facts = blank_facts() | {
        "manifest": {"data": {"categories": ["pii"], "encryption_at_rest": False}},
        "rating": {"computed": True, "total": 80.0, "band": "critical"},
        "missing": None,
    }
    facts["findings"]["open"]["critical"] = 1
    facts["findings"]["by_kind"]["behaviour"]["high"] = 1
    facts["checks"]["security.behaviour"] = "errored"
    prepared = PreparedFacts(facts)
    fields = ("key", "title", "severity", "mode", "message", "expression")
    for document in documents:
        policy = compile_policy(version=1, **{f: document[f] for f in fields})
        assert policy.fast is not None
        exact = bool(policy.exact.evaluate(prepared.context))
        assert policy.check(prepared) == (exact, ""), document["key"]
    rows = {
        r["key"]: r["outcome"]
        for r in evaluate(
            [compile_policy(version=1, **{f: d[f] for f in fields}) for d in documents],
            prepared,
            {"no-open-critical-findings": 7},
        )
    }
    assert rows["null-safe"] == "pass"  # the transpiler errs on null.x; the interpreter absorbs it
    assert rows["no-open-critical-findings"] == "exempted"
    assert rows["pii-encrypted-at-rest"] == rows["rating-not-critical"] == "violation"
    assert rows["no-serious-sandbox-behaviour"] == rows["checks-complete"] == "violation"


def test_policies_are_shown_in_the_admin_with_their_versions(client, tmp_path, board):
    load(tmp_path, a=policy_yaml("a", "true"))
    (tmp_path / "a.yaml").write_text(policy_yaml("a", "false"))
    load(tmp_path)
    client.force_login(board)
    changelist = client.get(reverse("admin:decisions_policy_changelist"))
    assert changelist.status_code == 200
    page = client.get(reverse("admin:decisions_policy_change", args=[Policy.objects.get(version=2).pk]))
    text = page.content.decode()
    assert page.status_code == 200 and "v1</a> enforce" in text and "v2</a> enforce" in text and "false" in text
    history = client.get(reverse("admin:decisions_policy_history", args=[Policy.objects.get(version=1).pk]))
    assert history.status_code == 200
    assert (
        client.post(reverse("admin:decisions_policy_change", args=[Policy.objects.get(version=2).pk])).status_code
        == 403
    )


def add_run(version, check_key: str, status: str, *, tool: str = "", findings: tuple = ()):
    """A run of ``check_key`` in ``status``, with ``(kind, severity, rule_id)`` findings."""
    run = CheckRun.objects.create(version=version, check_key=check_key, tool=tool or check_key, status=status)
    for number, (kind, severity, rule_id) in enumerate(findings):
        Finding.objects.create(
            check_run=run,
            version=version,
            kind=kind,
            severity=severity,
            rule_id=rule_id,
            title=f"{rule_id} seen",
            fingerprint=f"{rule_id}-{number}".ljust(64, "0"),
        )
    return run


def test_serious_sandbox_behaviour_blocks_approval_under_the_shipped_policies(make_awaiting, board):
    call_command("sync_policies", verbosity=0)
    version = make_awaiting("1.0.0")
    add_run(
        version,
        "security.behaviour",
        "failed",
        findings=(("behaviour", "high", "behaviour.undeclared-network"), ("behaviour", "medium", "behaviour.exit")),
    )
    evaluations = PolicyEvaluation.objects.count()

    with pytest.raises(PolicyBlocked) as blocked:
        approve(version=version, actor=board)
    assert [e["field"] for e in blocked.value.errors] == ["no-serious-sandbox-behaviour"]
    assert "[no-serious-sandbox-behaviour] The sandbox saw the plugin" in blocked.value.detail
    version.refresh_from_db()
    assert version.status == "awaiting_decision"
    assert PolicyEvaluation.objects.count() == evaluations + 1  # the facts_changed refusal's, as above
    assert not AuditEvent.objects.filter(action="version.approve", object_id=str(version.pk)).exists()

    # triaged as a false positive, the medium behaviour left only adds to the rating
    Finding.objects.filter(rule_id="behaviour.undeclared-network").update(triage="false_positive")
    approve(version=version, actor=board)
    version.refresh_from_db()
    assert version.status == "approved"
    approved = PolicyEvaluation.objects.filter(version=version, trigger="approve").order_by("-pk").first()
    results = {r["key"]: r["outcome"] for r in approved.results}
    assert results["no-serious-sandbox-behaviour"] == results["checks-complete"] == "pass"


@pytest.mark.parametrize("status", ["errored", "queued", "running"])
def test_a_check_that_errored_or_has_not_finished_blocks_approval_until_it_is_run_again(make_awaiting, board, status):
    call_command("sync_policies", verbosity=0)
    version = make_awaiting("1.0.0")
    add_run(version, "security.behaviour", "succeeded")
    add_run(version, "security.behaviour", status)  # the run again (or the plugin's crash) is the latest

    with pytest.raises(PolicyBlocked) as blocked:
        approve(version=version, actor=board)
    # checks-complete names the check; every other enforced policy over check results sees
    # "not finished" as a violation too (a check that has not judged is not one that passed)
    assert [e["field"] for e in blocked.value.errors] == [
        "checks-complete",
        "needs-human-review",
        "no-open-critical-findings",
        "no-serious-sandbox-behaviour",
        "no-undeclared-capabilities",
    ]
    assert "Re-run an errored check" in blocked.value.detail
    version.refresh_from_db()
    assert version.status == "awaiting_decision"

    add_run(version, "security.behaviour", "succeeded")  # run again, and finished
    approve(version=version, actor=board)
    version.refresh_from_db()
    assert version.status == "approved"


def test_one_tools_succeeded_report_does_not_hide_anothers_errored_one(make_awaiting):
    call_command("sync_policies", verbosity=0)
    version = make_awaiting("1.0.0")
    add_run(version, "external.sarif", "errored", tool="scanner-a")
    add_run(version, "external.sarif", "succeeded", tool="scanner-b")
    facts = version_facts(version=version)
    assert facts["checks"]["external.sarif"] == "errored"
    assessment, _rubric = assess_version(version=version)
    assert next(r["key"] for r in assessment.blocking) == "checks-complete"
    assert all("external.sarif (errored)" in r["error"] for r in assessment.blocking[1:])
