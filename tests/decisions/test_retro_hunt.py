"""Retro-hunt: approved versions judged again when the policies, the advisories or the
exemptions change, or when a roll back brings one back (decisions/retro_hunt.py)."""

from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from decisions import deployment
from decisions.models import FlagStatus, PolicyEvaluation, RetroHuntFlag
from decisions.retro_hunt import retro_flag_resolve, retro_flags_escalate, retro_hunt
from governance.errors import PermissionRefused, ValidationFailed
from governance.models import Notification
from reviews.checks.engine import check_runs_rematch_released
from reviews.models import CheckRun, Finding, RunStatus
from reviews.services import finding_triage
from submissions.samples import MANIFEST_TEMPLATE
from tests.conftest import make_environment
from tests.decisions.test_policies import add_critical, load, policy_yaml
from tests.reviews.test_security_checks import FIXTURES, import_

pytestmark = pytest.mark.django_db

NOT_ONE_O = policy_yaml("not-one-o", 'version.number != "1.0.0"', severity="high", message="1.0.0 is withdrawn.")


def told(event: str) -> list[str]:
    return sorted(Notification.objects.filter(event=event).values_list("recipient__username", flat=True))


def sync(directory: Path, capture, **files: str):
    """Sync the policy files; the retro-hunt it queues runs when the sync commits."""
    with capture(execute=True):
        return load(directory, **files)


@pytest.fixture
def two_approved(make_approved):
    return make_approved("1.0.0"), make_approved("1.1.0")


def test_a_stricter_policy_flags_only_the_approved_version_it_finds_and_tells_owners_and_security_once(
    tmp_path, two_approved, author, security, board, django_capture_on_commit_callbacks
):
    old, new = two_approved
    evaluations = PolicyEvaluation.objects.filter(version=new).count()
    sync(tmp_path, django_capture_on_commit_callbacks, one=NOT_ONE_O)

    flag = RetroHuntFlag.objects.get()
    assert (flag.version, flag.policy_key, flag.status) == (old, "not-one-o", FlagStatus.OPEN)
    assert flag.due_on == timezone.localdate() + timedelta(days=7)  # high: a week
    assert flag.message == "1.0.0 is withdrawn." and "policies changed: not-one-o v1" in flag.trigger
    assert not flag.proposes_revocation
    assert told("retro_hunt.flagged") == sorted([author.username, security.username])
    assert told("retro_hunt.revocation_proposed") == []
    assert PolicyEvaluation.objects.filter(version=new).count() == evaluations + 1  # a new policy: a new outcome

    # The same files again: nothing changed, so nothing is written and nobody is told again.
    before = PolicyEvaluation.objects.count()
    sync(tmp_path, django_capture_on_commit_callbacks, one=NOT_ONE_O)
    retro_hunt(trigger="by hand")
    assert PolicyEvaluation.objects.count() == before
    assert RetroHuntFlag.objects.count() == 1 and len(told("retro_hunt.flagged")) == 2


def test_a_policy_that_says_revoke_proposes_revocation_to_the_board(
    tmp_path, two_approved, board, django_capture_on_commit_callbacks
):
    sync(tmp_path, django_capture_on_commit_callbacks, one=NOT_ONE_O + "retro_hunt: revoke\n")
    assert RetroHuntFlag.objects.get().proposes_revocation
    assert told("retro_hunt.revocation_proposed") == [board.username]


def test_a_policy_file_with_an_unknown_retro_hunt_action_is_refused(tmp_path):
    with pytest.raises(ValidationFailed, match="retro_hunt 'delete'"):
        load(tmp_path, one=NOT_ONE_O + "retro_hunt: delete\n")


def test_adding_the_retro_hunt_field_does_not_make_new_versions_of_unchanged_policies(
    tmp_path, django_capture_on_commit_callbacks
):
    first = sync(tmp_path, django_capture_on_commit_callbacks, one=NOT_ONE_O)
    again = sync(tmp_path, django_capture_on_commit_callbacks, one=NOT_ONE_O + "retro_hunt: flag\n")
    assert first.created == ["not-one-o v1"] and again.unchanged == ["not-one-o v1"]


def test_a_flag_clears_itself_when_a_later_evaluation_no_longer_finds_it(
    tmp_path, two_approved, django_capture_on_commit_callbacks
):
    sync(tmp_path, django_capture_on_commit_callbacks, one=NOT_ONE_O)
    sync(tmp_path, django_capture_on_commit_callbacks, one=NOT_ONE_O.replace("mode: enforce", "mode: log"))
    flag = RetroHuntFlag.objects.get()
    assert flag.status == FlagStatus.CLEARED and "No longer found" in flag.closing_reason


def test_resolving_needs_a_security_reviewer_and_a_reason_and_new_facts_raise_it_again(
    tmp_path, two_approved, author, security, django_capture_on_commit_callbacks
):
    old, _new = two_approved
    sync(tmp_path, django_capture_on_commit_callbacks, crit=policy_yaml("no-crit", "findings.open.critical == 0"))
    run = add_critical(old).check_run
    retro_hunt(trigger="a finding appeared")
    flag = RetroHuntFlag.objects.get(version=old)
    with pytest.raises(PermissionRefused):
        retro_flag_resolve(flag=flag, actor=author, reason="It is fine.")
    with pytest.raises(ValidationFailed):
        retro_flag_resolve(flag=flag, actor=security, reason=" ")
    retro_flag_resolve(flag=flag, actor=security, reason="Accepted: not reachable on the host; fixed in 1.2.0.")
    flag.refresh_from_db()
    assert flag.status == FlagStatus.RESOLVED and flag.closed_by == security

    retro_hunt(trigger="nothing new")
    assert RetroHuntFlag.objects.filter(version=old).count() == 1  # the same facts: not raised again
    Finding.objects.create(
        check_run=run, version=old, kind="security", severity="critical", rule_id="B2", title="t", fingerprint="b" * 64
    )
    retro_hunt(trigger="a second finding appeared")
    assert RetroHuntFlag.objects.filter(version=old, status=FlagStatus.OPEN).count() == 1


def requiring(requirement: str, number: str) -> str:
    manifest = MANIFEST_TEMPLATE.format(
        name="acme-exporter", version=number, module="acme_exporter", category="data-connector"
    )
    return manifest.replace("requirements = []", f'requirements = ["{requirement}"]')


def test_new_advisories_rematch_only_the_versions_that_require_the_package_and_flag_them(
    tmp_path, make_approved, author, security, django_capture_on_commit_callbacks
):
    affected = make_approved("1.0.0", manifest=requiring("requests==2.30.0", "1.0.0"))
    other = make_approved("1.1.0", manifest=requiring("idna==3.7", "1.1.0"))
    sync(
        tmp_path,
        django_capture_on_commit_callbacks,
        deps=policy_yaml("no-vulnerable-deps", "findings.by_kind.dependency.medium == 0", severity="critical"),
    )
    assert not RetroHuntFlag.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        import_(str(FIXTURES / "osv"))

    rematch = CheckRun.objects.get(version=affected, check_key="security.dependencies")
    assert rematch.status == RunStatus.SUCCEEDED and rematch.findings.get().data["package"] == "requests"
    assert not CheckRun.objects.filter(version=other, check_key="security.dependencies")
    flag = RetroHuntFlag.objects.get()
    assert (flag.version, flag.policy_key) == (affected, "no-vulnerable-deps")
    assert flag.due_on == timezone.localdate() + timedelta(days=2)  # critical: two days
    assert "security.dependencies ran again" in flag.trigger
    assert told("retro_hunt.flagged") == sorted([author.username, security.username])


def test_a_rematch_keeps_the_triage_reviewers_gave_the_same_finding(
    make_approved, security, django_capture_on_commit_callbacks
):
    version = make_approved("1.0.0", manifest=requiring("requests==2.30.0", "1.0.0"))
    with django_capture_on_commit_callbacks(execute=True):
        import_(str(FIXTURES / "osv"))
    first = CheckRun.objects.get(version=version, check_key="security.dependencies")
    finding = first.findings.get()
    finding_triage(finding=finding, actor=security, to_state="false_positive", reason="The extra is not installed.")

    with django_capture_on_commit_callbacks(execute=True):
        assert check_runs_rematch_released(packages=["Requests"]) == 1  # names match however they are spelt
    second = CheckRun.objects.get(version=version, check_key="security.dependencies", replaces=first)
    assert second.findings.get().triage == "false_positive"
    assert list(first.findings.values_list("pk", "triage")) == [(finding.pk, "false_positive")]  # evidence kept
    assert not RetroHuntFlag.objects.exists()


def test_revoking_closes_the_open_flags(tmp_path, two_approved, board, django_capture_on_commit_callbacks):
    old, _new = two_approved
    sync(tmp_path, django_capture_on_commit_callbacks, one=NOT_ONE_O)
    deployment.version_revoke(version=old, actor=board, reason="Found after approval.")
    flag = RetroHuntFlag.objects.get()
    assert flag.status == FlagStatus.REVOKED and flag.closed_by == board


def test_an_overdue_flag_is_escalated_once(tmp_path, two_approved, security, board, django_capture_on_commit_callbacks):
    sync(tmp_path, django_capture_on_commit_callbacks, one=NOT_ONE_O)
    later = timezone.localdate() + timedelta(days=8)
    assert retro_flags_escalate(today=timezone.localdate()) == 0
    assert retro_flags_escalate(today=later) == 1
    assert retro_flags_escalate(today=later) == 0
    assert {security.username, board.username} <= set(told("retro_hunt.overdue"))


def test_a_version_a_roll_back_brings_back_is_judged_as_of_now(
    tmp_path, two_approved, platform_admin, django_capture_on_commit_callbacks
):
    old, new = two_approved
    production = make_environment(platform_admin, "production")
    deployment.version_deploy(version=old, environment=production, actor=platform_admin)
    deployment.version_deploy(version=new, environment=production, actor=platform_admin)
    # A policy that 1.0.0 violates arrives while 1.0.0 is superseded: flagged at once, as it still stands.
    with django_capture_on_commit_callbacks(execute=True):
        load(tmp_path, one=NOT_ONE_O)
    RetroHuntFlag.objects.all().delete()  # as if it had been found before the policy existed
    deployment.version_roll_back(version=new, environment=production, actor=platform_admin, reason="Errors doubled.")
    flag = RetroHuntFlag.objects.get()
    assert flag.version == old and flag.trigger.startswith("reinstated:")


def test_a_version_under_review_whose_match_ran_is_matched_again_but_not_flagged(
    make_awaiting, django_capture_on_commit_callbacks
):
    waiting = make_awaiting("1.0.0", manifest=requiring("requests==2.30.0", "1.0.0"))
    earlier = CheckRun.objects.create(
        version=waiting, check_key="security.dependencies", tool="osv", status="succeeded"
    )
    with django_capture_on_commit_callbacks(execute=True):
        import_(str(FIXTURES / "osv"))
    rematch = CheckRun.objects.get(version=waiting, replaces=earlier)
    assert rematch.findings.get().data["package"] == "requests"  # the board's next rating counts it
    assert not RetroHuntFlag.objects.exists()  # not approved: nothing to hunt
