"""Exemptions: who may ask and approve, what they suppress (shown, not hidden), expiry."""

import json
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from decisions.exemptions import exemption_approve, exemption_reject, exemption_request, exemption_revoke
from decisions.facts import version_facts
from decisions.models import Exemption, PolicyEvaluation
from decisions.tasks import expire_exemptions
from governance import roles
from governance.errors import PermissionRefused, PolicyBlocked, TransitionRefused, ValidationFailed
from governance.models import AuditEvent, Notification
from tests.conftest import approve, last_audit, make_user
from tests.decisions.test_policies import add_critical, load, policy_yaml

pytestmark = pytest.mark.django_db
START = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


@pytest.fixture
def enforced(tmp_path):
    load(tmp_path, critical=policy_yaml("no-critical", "findings.open.critical == 0", message="Fix criticals."))


def ask(actor, version, *, days: int = 30, **target):
    target = target or {"policy_key": "no-critical"}
    return exemption_request(
        actor=actor,
        plugin=version.plugin,
        scope="version",
        version=version,
        justification="Only reachable from the admin console; fix in 1.1.",
        compensating_controls="Console behind SSO\nWAF rule 9001",
        expires_at=timezone.now() + timedelta(days=days),
        **target,
    )


def test_an_exemption_is_approved_by_the_board_never_by_its_requester(enforced, make_awaiting, author, board, board2):
    version = make_awaiting("1.0.0")
    by_board = ask(board, version)
    with pytest.raises(PermissionRefused, match="asked for this exemption and may not approve it"):
        exemption_approve(exemption=by_board, actor=board)
    by_board.refresh_from_db()
    assert by_board.status == "requested" and last_audit(by_board).action == "exemption.request"

    by_author = ask(author, version)
    with pytest.raises(PermissionRefused, match="Only the approval board"):
        exemption_approve(exemption=by_author, actor=make_user_outside_board(author))
    exemption_approve(exemption=by_author, actor=board2, reason="Controls seen.")
    by_author.refresh_from_db()
    assert (by_author.status, by_author.approved_by) == ("approved", board2)
    event = last_audit(by_author)
    assert (event.action, event.actor, event.from_state, event.to_state) == (
        "exemption.approve",
        board2,
        "requested",
        "approved",
    )
    assert by_author.history.first().history_user == board2
    assert Notification.objects.filter(recipient=author, event="exemption.decided").exists()


def make_user_outside_board(author):
    from django.contrib.auth import get_user_model

    return make_user(get_user_model(), "reviewer-not-board", roles.SECURITY_REVIEWERS)


def test_outsiders_cannot_ask_and_bad_requests_change_nothing(enforced, make_awaiting, outsider, author):
    version = make_awaiting("1.0.0")
    with pytest.raises(PermissionRefused):
        ask(outsider, version)
    with pytest.raises(ValidationFailed) as refused:
        ask(author, version, days=-1)
    assert refused.value.errors[0]["field"] == "expires_at"
    with pytest.raises(ValidationFailed):
        ask(author, version, policy_key="no-such-policy")
    with pytest.raises(ValidationFailed):
        ask(author, version, days=400)  # beyond WARDEN_EXEMPTION_MAX_DAYS
    assert not Exemption.objects.exists()


def test_an_approved_exemption_suppresses_the_violation_and_shows_it(enforced, make_awaiting, author, board, board2):
    version = make_awaiting("1.0.0")
    add_critical(version)
    exemption = ask(author, version)
    with pytest.raises(PolicyBlocked):  # requested is not approved: nothing suppressed yet
        approve(version=version, actor=board)
    exemption_approve(exemption=exemption, actor=board2)
    approve(version=version, actor=board)
    version.refresh_from_db()
    assert version.status == "approved"
    evaluation = PolicyEvaluation.objects.filter(version=version, trigger="approve").order_by("-pk").first()
    result = evaluation.results[0]
    assert (result["outcome"], result["exemption"], result["blocks"]) == ("exempted", exemption.pk, False)
    rating = version.risk_ratings.order_by("-pk").first()
    credit = next(r for r in rating.breakdown if r["factor"] == "compensating_controls")
    assert credit["inputs"]["controls"] == ["Console behind SSO", "WAF rule 9001"]
    assert credit["contribution"] == "-4.00"


def test_an_expired_exemption_lets_the_violation_return_and_tells_the_owners(
    enforced, make_awaiting, author, board, board2
):
    with time_machine.travel(START, tick=False):
        version = make_awaiting("1.0.0")
        add_critical(version)
        exemption = ask(author, version, days=30)
        exemption_approve(exemption=exemption, actor=board2)
        assert version_facts(version=version)["exemptions"]["policies"] == {"no-critical": exemption.pk}

    with time_machine.travel(START + timedelta(days=30, minutes=1), tick=False):
        # past expiry it suppresses nothing, even before the task has run
        assert version_facts(version=version)["exemptions"]["policies"] == {}
        with pytest.raises(PolicyBlocked, match=r"Fix criticals\."):
            approve(version=version, actor=board)
        assert expire_exemptions() == 1
        assert expire_exemptions() == 0
    latest = PolicyEvaluation.objects.filter(version=version).latest("pk")
    assert (latest.trigger, latest.passed) == ("exemption_expired", False)  # the board sees it at once
    exemption.refresh_from_db()
    assert exemption.status == "expired"
    event = last_audit(exemption)
    assert (event.action, event.actor, event.to_state) == ("exemption.expire", None, "expired")
    told = set(Notification.objects.filter(event="exemption.expired").values_list("recipient__username", flat=True))
    assert told == {"acme-author", "board2"}


def test_owners_are_warned_once_ahead_of_expiry(enforced, make_awaiting, author, board2):
    with time_machine.travel(START, tick=False):
        version = make_awaiting("1.0.0")
        exemption_approve(exemption=ask(author, version, days=30), actor=board2)
    with time_machine.travel(START + timedelta(days=10), tick=False):
        expire_exemptions()
        assert not Notification.objects.filter(event="exemption.expiring").exists()  # 20 days left: too early
    with time_machine.travel(START + timedelta(days=20), tick=False):
        expire_exemptions()
        expire_exemptions()
    warnings = Notification.objects.filter(event="exemption.expiring")
    assert sorted(warnings.values_list("recipient__username", flat=True)) == ["acme-author", "board2"]
    assert Exemption.objects.get().status == "approved"


def test_a_finding_exemption_for_the_plugin_covers_later_versions_and_is_shown(
    enforced, make_awaiting, author, board, board2
):
    first = make_awaiting("1.0.0")
    finding = add_critical(first)
    exemption = exemption_request(
        actor=author,
        plugin=first.plugin,
        scope="plugin",
        finding=finding,
        justification="Known false alarm in generated code.",
        expires_at=timezone.now() + timedelta(days=10),
    )
    exemption_approve(exemption=exemption, actor=board2)
    second = make_awaiting("1.0.1")
    add_critical(second)  # same fingerprint
    facts = version_facts(version=second)
    assert facts["findings"]["open"]["critical"] == 0
    assert facts["findings"]["exempted"] == 1
    assert facts["exemptions"]["findings"] == {finding.fingerprint: exemption.pk}
    approve(version=second, actor=board)

    exemption_revoke(exemption=exemption, actor=board2, reason="The generated code changed.")
    assert version_facts(version=first)["findings"]["open"]["critical"] == 1
    assert Notification.objects.filter(recipient=author, event="exemption.expired").exists()


def test_rejected_exemptions_suppress_nothing_and_need_a_reason(enforced, make_awaiting, author, board2):
    version = make_awaiting("1.0.0")
    exemption = ask(author, version)
    with pytest.raises(ValidationFailed):
        exemption_reject(exemption=exemption, actor=board2, reason="")
    exemption_reject(exemption=exemption, actor=board2, reason="Fix it instead.")
    with pytest.raises(TransitionRefused):
        exemption_approve(exemption=exemption, actor=board2)
    assert version_facts(version=version)["exemptions"]["policies"] == {}


def test_the_register_of_decisions_and_exemptions_exports_for_auditors(
    enforced, make_awaiting, author, board, board2, tmp_path
):
    version = make_awaiting("1.0.0")
    exemption_approve(exemption=ask(author, version), actor=board2)
    approve(version=version, actor=board, reason="Fine.")
    target = tmp_path / "register.json"
    call_command("export_risk_register", "--format", "json", "--output", str(target), verbosity=0)
    rows = json.loads(target.read_text())
    assert [r["entry"] for r in rows] == ["version.approve", "exemption"]
    decision, exemption = rows
    assert (decision["by"], decision["rating_band"], decision["policies_passed"]) == ("board", "low", True)
    assert (exemption["requested_by"], exemption["approved_by"], exemption["covers"]) == (
        "acme-author",
        "board2",
        "policy no-critical",
    )
    call_command("export_risk_register", "--output", str(tmp_path / "register.csv"), verbosity=0)
    lines = (tmp_path / "register.csv").read_text().splitlines()
    assert lines[0].startswith("entry,id,plugin,version,status") and len(lines) == 3


def test_the_admin_requests_and_approves_exemptions(client, enforced, make_awaiting, author, board2, outsider):
    version = make_awaiting("1.0.0")
    client.force_login(author)
    response = client.post(
        reverse("admin:decisions_exemption_add"),
        {
            "plugin": version.plugin.pk,
            "scope": "version",
            "version": version.pk,
            "policy_key": "no-critical",
            "justification": "Behind SSO.",
            "controls": "SSO",
            "expires_at": (timezone.now() + timedelta(days=5)).strftime("%Y-%m-%d 12:00:00"),
        },
    )
    assert response.status_code == 302
    exemption = Exemption.objects.get()
    assert (exemption.requested_by, exemption.compensating_controls) == (author, ["SSO"])

    client.force_login(board2)
    act = reverse("admin:decisions_exemption_act", args=[exemption.pk, "approve"])
    assert client.post(act, {"reason": "ok"}).status_code == 302
    exemption.refresh_from_db()
    assert exemption.status == "approved"
    assert AuditEvent.objects.filter(action="exemption.approve", actor=board2).exists()

    client.force_login(outsider)
    assert client.get(reverse("admin:decisions_exemption_change", args=[exemption.pk])).status_code in (302, 403, 404)


def test_risk_changelists_do_not_grow_queries_with_rows_and_hide_from_outsiders(
    client, enforced, make_awaiting, author, board, board2, outsider
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    first = make_awaiting("1.0.0")
    exemption = ask(author, first)
    urls = [
        reverse("admin:decisions_exemption_changelist"),
        reverse("admin:decisions_riskrating_changelist"),
        reverse("admin:decisions_policyevaluation_changelist"),
    ]
    client.force_login(board)

    def queries() -> list[int]:
        counts = []
        for url in urls:
            with CaptureQueriesContext(connection) as captured:
                assert client.get(url).status_code == 200
            counts.append(len(captured))
        return counts

    queries()  # warm-up: content types and permissions are cached after the first request
    before = queries()
    for number in ("1.0.1", "1.0.2"):
        ask(author, make_awaiting(number))
    assert queries() == before

    client.force_login(outsider)
    page = client.get(reverse("admin:decisions_exemption_change", args=[exemption.pk]))
    assert page.status_code == 404
    listing = client.get(reverse("admin:decisions_exemption_changelist")).content.decode()
    assert str(exemption) not in listing


def test_exemptions_are_seen_only_by_who_may_see_their_plugin_or_version(
    client, enforced, make_awaiting, author, other_author, globex, board2, security, platform_admin, outsider
):
    from decisions.selectors import exemptions_visible_to
    from submissions import services as sub

    acme_version = make_awaiting("1.0.0")  # the security reviewers review it
    acme_exemption = ask(author, acme_version)
    globex_plugin = sub.plugin_create(organisation=globex, name="globex-sync", category="reporting", actor=other_author)
    globex_exemption = exemption_request(
        actor=other_author,
        plugin=globex_plugin,
        scope="plugin",
        policy_key="no-critical",
        justification="Our own reasons.",
        expires_at=timezone.now() + timedelta(days=5),
    )

    def seen(user) -> set[int]:
        return set(exemptions_visible_to(user=user).values_list("pk", flat=True))

    everything = {acme_exemption.pk, globex_exemption.pk}
    assert seen(board2) == seen(platform_admin) == everything
    assert seen(author) == {acme_exemption.pk}
    assert seen(other_author) == {globex_exemption.pk}
    assert seen(security) == {acme_exemption.pk}  # what they review, not another organisation's
    assert seen(outsider) == set()
    assert not security.has_perm("decisions.view_exemption")  # the global "every exemption" is gone

    for user, hidden in ((security, globex_exemption), (other_author, acme_exemption)):
        client.force_login(user)
        page = client.get(reverse("admin:decisions_exemption_change", args=[hidden.pk]))
        assert page.status_code == 404
        listing = client.get(reverse("admin:decisions_exemption_changelist"))
        assert listing.status_code == 200 and str(hidden) not in listing.content.decode()
    client.force_login(security)
    page = client.get(reverse("admin:decisions_exemption_change", args=[acme_exemption.pk]))
    assert page.status_code == 200


def test_granting_or_revoking_an_exemption_rates_the_waiting_version_again_at_once(
    enforced, make_awaiting, author, board, board2
):
    version = make_awaiting("1.0.0")
    add_critical(version)
    exemption = ask(author, version, days=30)
    exemption_approve(exemption=exemption, actor=board2)
    latest = PolicyEvaluation.objects.filter(version=version).latest("pk")
    assert (latest.trigger, latest.passed) == ("exemption_approved", True)  # the board sees the exempted rating
    exemption_revoke(exemption=exemption, actor=board2, reason="The compensating control is gone.")
    latest = PolicyEvaluation.objects.filter(version=version).latest("pk")
    assert (latest.trigger, latest.passed) == ("exemption_revoked", False)
