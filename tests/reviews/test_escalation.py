"""The "needs human review" flag: what a version adds against the last approved version of its
plugin (reviews/escalation.py), on the security stage, in the fact document and its policy.

The security stage runs the behaviour check with the sandbox's run given by the test
(``sandbox``): bubblewrap is not on every machine, and what the plugin did in it is this test's
input, not its subject (tests/reviews/test_sandbox.py runs the real sandbox).
"""

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.conf import settings

from decisions.deployment import version_revoke
from decisions.facts import unfinished_checks, version_facts
from decisions.policies import PreparedFacts, compile_policy, evaluate, policy_document
from governance.errors import ValidationFailed
from governance.models import AllowedLicence, AuditEvent, HostPlatform
from reviews import services as review
from reviews.escalation import last_approved_version, permission_flags, version_escalation
from reviews.models import ReviewStatus, RunStatus
from reviews.sandbox.runner import SandboxRun
from submissions import services as sub
from submissions.samples import MANIFEST_TEMPLATE, plugin_archive
from tests.conftest import approve, current_review, open_review, sign_off

pytestmark = pytest.mark.django_db

BASE = "1.0.0, the last approved version"


def manifest(number: str, *, network=(), subprocess=False, categories=("usage",)) -> str:
    text = MANIFEST_TEMPLATE.format(
        name="acme-exporter", version=number, module="acme_exporter", category="data-connector"
    )
    return (
        text.replace("network = []", f"network = {json.dumps(list(network))}")
        .replace("subprocess = false", f"subprocess = {json.dumps(subprocess)}")
        .replace('categories = ["usage"]', f"categories = {json.dumps(list(categories))}")
    )


def fake_sandbox(monkeypatch) -> SimpleNamespace:
    """What the plugin does in the sandbox: ``sandbox.events`` (kind, target, access ...)."""
    seen = SimpleNamespace(events=[])

    def run(**options):
        where = {"file": "acme_exporter/plugin.py", "line": 5, "function": "__init__"}
        events = [{"type": "event", "phase": "import", "where": where, **event} for event in seen.events]
        return SandboxRun(isolation="bubblewrap", records=[*events, {"type": "result"}])

    monkeypatch.setattr("reviews.checks.behaviour.sandbox_run", run)
    return seen


@pytest.fixture
def sandbox(monkeypatch):
    return fake_sandbox(monkeypatch)


@pytest.fixture
def security_stage(pipeline):
    stage = pipeline["security"]
    stage.checks = ["security.behaviour"]
    stage.save()
    return stage


@pytest.fixture
def submit(plugin, author, security_stage, sandbox, django_capture_on_commit_callbacks):
    """Upload and submit: eligibility passes on its own, the security stage's check runs."""
    HostPlatform.objects.get_or_create(name="Test host", defaults={"api_version": "2.4", "is_default": True})
    AllowedLicence.objects.get_or_create(spdx_id="MIT")

    def go(number: str, **options):
        archive = plugin_archive(plugin.name, number, manifest=manifest(number, **options))
        version = sub.version_create(plugin=plugin, artifact=archive, actor=author)
        with django_capture_on_commit_callbacks(execute=True):
            sub.version_submit(version=version, actor=author)
        assert current_review(version, "eligibility").status == ReviewStatus.PASSED
        return version

    return go


@pytest.fixture
def approved(submit, security, performance, compliance, board, django_capture_on_commit_callbacks):
    def go(number: str, **options):
        version = submit(number, **options)
        if current_review(version, "security").status == ReviewStatus.IN_PROGRESS:
            review.stage_pass(review=open_review(version, "security"), actor=security, reason="Reviewed.")
        review.stage_pass(review=open_review(version, "performance"), actor=performance)
        with django_capture_on_commit_callbacks(execute=True):
            sign_off(version, compliance)
        approve(version=version, actor=board)
        version.refresh_from_db()
        assert version.status == "approved"
        return version

    return go


def flags_of(version) -> list[dict]:
    return current_review(version, "security").escalation_flags


def escalation_events(version) -> list[AuditEvent]:
    security = current_review(version, "security")
    return list(AuditEvent.objects.filter(action="stage.escalation", object_id=str(security.pk)).order_by("seq"))


WRITES_CACHE = {"kind": "file", "access": "write", "target": "/tmp/cache.json"}  # declared: write:/tmp
STARTS_LS = {"kind": "subprocess", "target": "ls -l"}


def test_a_new_network_permission_raises_the_flag_with_its_reason(approved, submit):
    approved("1.0.0")
    update = submit("1.1.0", network=["api.acme.example:443"])

    reason = f"Declares the new network target api.acme.example:443; {BASE} did not."
    assert flags_of(update) == [{"kind": "permission", "what": "network:api.acme.example:443", "reason": reason}]
    (event,) = escalation_events(update)
    assert event.actor is None and event.reason == f"Needs human review: {reason}"
    assert event.data == {"flags": flags_of(update), "before": []}
    assert open_review(update, "security").escalation_acknowledged_at is None


def test_a_new_observed_capability_raises_the_flag_with_its_reason(approved, submit, sandbox):
    sandbox.events = [WRITES_CACHE]
    approved("1.0.0")
    sandbox.events = [WRITES_CACHE, STARTS_LS]  # the same plugin.toml; the code now starts a process
    update = submit("1.1.0")

    assert flags_of(update) == [
        {
            "kind": "capability",
            "what": "capability:process-spawn",
            "reason": f"Starting processes: observed in the sandbox (ls -l); {BASE} showed none.",
        }
    ]
    behaviour = update.check_runs.get(check_key="security.behaviour")
    assert behaviour.status == RunStatus.FAILED  # undeclared too: the check's own high finding
    assert behaviour.summary["observed"] == {"filesystem-write": ["/tmp/cache.json"], "process-spawn": ["ls -l"]}


def test_a_new_data_category_raises_the_flag_with_its_reason(approved, submit):
    approved("1.0.0")
    update = submit("1.1.0", categories=["usage", "pii"])

    assert flags_of(update) == [
        {"kind": "data", "what": "data:pii", "reason": f"Processes a new data category, pii; {BASE} did not."}
    ]


def test_an_identical_update_raises_no_flag(approved, submit, sandbox):
    sandbox.events = [WRITES_CACHE, STARTS_LS]
    approved("1.0.0", network=["api.acme.example:443"], subprocess=True, categories=["usage", "pii"])
    update = submit("1.0.1", network=["api.acme.example:443"], subprocess=True, categories=["usage", "pii"])

    assert flags_of(update) == []
    assert escalation_events(update) == []
    assert update.check_runs.get(check_key="security.behaviour").status == RunStatus.SUCCEEDED


def test_the_first_version_of_a_plugin_raises_no_flag(submit, sandbox):
    sandbox.events = [STARTS_LS]
    first = submit("1.0.0", network=["api.acme.example:443"], categories=["pii"])

    assert last_approved_version(version=first) is None
    assert flags_of(first) == [] and escalation_events(first) == []


def test_only_an_approval_that_stands_is_the_baseline(approved, submit, board):
    approved("1.0.0")
    second = approved("1.1.0", network=["api.acme.example:443"])
    third = submit("1.2.0", network=["api.acme.example:443"])
    assert last_approved_version(version=third) == second and flags_of(third) == []

    version_revoke(version=second, actor=board, reason="A critical advisory affects it.")
    fourth = submit("1.3.0", network=["api.acme.example:443"])
    assert last_approved_version(version=fourth).version == "1.0.0"
    assert [flag["what"] for flag in flags_of(fourth)] == ["network:api.acme.example:443"]


def test_declarations_the_last_approved_ones_cover_are_not_new():
    before = {"permissions": {"network": ["*.acme.example:443"], "filesystem": ["write:/tmp"], "subprocess": False}}
    after = {
        "permissions": {
            "network": ["api.acme.example:443", "api.other.example:443"],
            "filesystem": ["write:/tmp/cache", "read:/tmp/in", "read:/etc"],
            "subprocess": False,
            "environment": ["ACME_TOKEN"],
        },
        "native": {"reason": "A fast parser."},
    }

    flags = permission_flags(before=before, after=after, label="1.0.0")

    assert [flag["what"] for flag in flags] == [
        "network:api.other.example:443",
        "filesystem:read:/etc",
        "environment:ACME_TOKEN",
        "native",
    ]


# -- what the flag holds back ------------------------------------------------------------


def test_a_flagged_security_stage_does_not_pass_on_its_own(approved, submit, security_stage):
    security_stage.auto_pass = True
    security_stage.save()
    approved("1.0.0")
    same = submit("1.0.1")
    assert current_review(same, "security").status == ReviewStatus.PASSED  # nothing new: it passes alone

    flagged = submit("1.1.0", network=["api.acme.example:443"])

    security = current_review(flagged, "security")
    assert security.status == ReviewStatus.IN_PROGRESS and security.decided_at is None
    refused = AuditEvent.objects.get(action="stage.auto_pass_refused", object_id=str(security.pk))
    assert refused.reason == (
        "Every check passed, but it needs human review: "
        f"Declares the new network target api.acme.example:443; {BASE} did not."
    )
    assert refused.data == {"flags": security.escalation_flags}


def test_a_reviewer_passes_a_flagged_stage_with_a_reason_that_acknowledges_the_flags(approved, submit, security):
    approved("1.0.0")
    update = submit("1.1.0", network=["api.acme.example:443"], categories=["usage", "pii"])
    flags = flags_of(update)
    assert [flag["what"] for flag in flags] == ["network:api.acme.example:443", "data:pii"]

    with pytest.raises(ValidationFailed) as refused:
        review.stage_pass(review=open_review(update, "security"), actor=security, reason=" ")
    assert refused.value.code == "reason_required" and "needs human review" in refused.value.detail
    assert "api.acme.example:443" in refused.value.detail
    assert open_review(update, "security").escalation_acknowledged_at is None

    passed = review.stage_pass(
        review=open_review(update, "security"), actor=security, reason="The exporter needs its API; pii is hashed."
    )

    passed.refresh_from_db()
    assert passed.status == ReviewStatus.PASSED and passed.escalation_acknowledged_at is not None
    assert passed.escalation_flags == flags
    event = AuditEvent.objects.filter(action="stage.pass", object_id=str(passed.pk)).get()
    assert event.actor == security and event.reason == "The exporter needs its API; pii is hashed."
    assert event.data == {"escalation_acknowledged": flags}
    assert passed.history.first().escalation_acknowledged_at == passed.escalation_acknowledged_at


# -- the fact and the policy -------------------------------------------------------------


def needs_human_review(version) -> str:
    text = (Path(settings.WARDEN_POLICY_DIR) / "needs-human-review.yaml").read_text()
    document = policy_document(text, source="needs-human-review.yaml")
    fields = ("key", "title", "severity", "mode", "message", "expression")
    policy = compile_policy(version=1, **{field: document[field] for field in fields})
    assert policy.reads_check_results  # it waits for the checks the flag is computed from
    facts = version_facts(version=version)
    (row,) = evaluate([policy], PreparedFacts(facts), {}, unfinished_checks(facts["checks"]))
    return row["outcome"]


def test_the_policy_is_violated_until_a_reviewer_acknowledges_the_flag(approved, submit, security):
    first = approved("1.0.0")
    assert version_facts(version=first)["escalation"] == {"flags": [], "acknowledged": False}
    assert needs_human_review(first) == "pass"
    update = submit("1.1.0", network=["api.acme.example:443"])

    facts = version_facts(version=update)
    assert facts["escalation"] == {"flags": flags_of(update), "acknowledged": False} and facts["escalation"]["flags"]
    assert needs_human_review(update) == "violation"

    review.stage_pass(review=open_review(update, "security"), actor=security, reason="It needs its API.")

    assert version_facts(version=update)["escalation"]["acknowledged"] is True
    assert needs_human_review(update) == "pass"


def test_waiving_a_flagged_stage_acknowledges_nothing(approved, submit, platform_admin):
    approved("1.0.0")
    update = submit("1.1.0", categories=["usage", "pii"])

    review.stage_waive(review=open_review(update, "security"), actor=platform_admin, reason="Reviewed elsewhere.")

    assert version_facts(version=update)["escalation"]["acknowledged"] is False
    assert needs_human_review(update) == "violation"


def test_the_manifest_flags_are_raised_when_the_stage_opens_and_a_waiver_acknowledges_none(
    approved, submit, security_stage, platform_admin
):
    approved("1.0.0")
    security_stage.checks = []  # no automated check: nothing would have recomputed the flags
    security_stage.save()
    update = submit("1.1.0", network=["evil.example:443"], categories=["usage", "pii"])
    security = open_review(update, "security")
    assert {flag["kind"] for flag in security.escalation_flags} == {"permission", "data"}  # before any check
    review.stage_waive(review=security, actor=platform_admin, reason="Urgent release.")
    escalation = version_escalation(version=update)
    assert escalation["flags"] and not escalation["acknowledged"]  # needs-human-review still blocks


def test_a_newly_declared_wildcard_port_or_a_dotted_path_is_no_narrower(approved, submit):
    approved("1.0.0", network=["api.acme.example:443"])
    update = submit("1.1.0", network=["api.acme.example:*"])
    assert [flag["kind"] for flag in current_review(update, "security").escalation_flags] == ["permission"]
