"""The board decides on the evidence it was shown: the approval names the rating and policy
evaluation, is refused when the facts changed since, and the decision stores what it approved."""

from html.parser import HTMLParser

import pytest
from django.urls import reverse

from decisions import approval
from decisions.models import Decision, PolicyEvaluation, RiskRating
from decisions.services import decision_basis, version_reassess
from governance.errors import FactsChanged, ValidationFailed
from governance.models import AuditEvent
from tests.conftest import current_review
from tests.decisions.test_exemptions import ask
from tests.decisions.test_policies import add_critical, load, policy_yaml

pytestmark = pytest.mark.django_db


class FormsOf(HTMLParser):
    """Which form each submit button of a page submits, as a browser decides it: its ``form``
    attribute, else the form enclosing it (forms cannot nest: an inner form tag is ignored)."""

    def __init__(self):
        super().__init__()
        self.open_form: str | None = None
        self.buttons: dict[str, str | None] = {}
        self.nested = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.nested |= self.open_form is not None
            self.open_form = self.open_form or attrs.get("id") or attrs.get("action", "")
        elif tag == "button" and attrs.get("name") == "decision":
            self.buttons[attrs["value"]] = attrs.get("form") or self.open_form

    def handle_endtag(self, tag):
        if tag == "form":
            self.open_form = None


def decision_buttons(html: str) -> FormsOf:
    parser = FormsOf()
    parser.feed(html)
    return parser


@pytest.fixture
def rated_with_a_critical(tmp_path, make_awaiting, board):
    """Awaiting decision with an open critical finding; the board's page shows its rating."""
    load(tmp_path, critical=policy_yaml("no-critical", "findings.open.critical == 0", mode="log"))
    version = make_awaiting("1.0.0")
    add_critical(version)
    version_reassess(version=version, actor=board)  # the rating the board is shown: the finding counts
    return version


def test_an_approval_on_a_rating_whose_facts_changed_is_refused_and_the_new_rating_kept(
    rated_with_a_critical, author, board, board2
):
    version = rated_with_a_critical
    shown = decision_basis(version=version)
    assert shown.rating.total > 0
    exemption = ask(author, version, policy_key="", finding=version.findings.get())  # the facts change
    from decisions.exemptions import exemption_approve

    exemption_approve(exemption=exemption, actor=board2)

    with pytest.raises(FactsChanged) as refused:
        approval.version_approve(version=version, actor=board, reason="Fine.", **shown.ids)
    assert refused.value.status == 409 and refused.value.code == "facts_changed"
    assert f"({shown.rating.total}, {shown.rating.band})" in refused.value.detail
    version.refresh_from_db()
    assert version.status == "awaiting_decision"
    assert not Decision.objects.filter(version=version).exists()
    now = decision_basis(version=version)  # the refusal stored what holds now
    assert now.rating.pk == refused.value.rating_id != shown.rating.pk
    assert now.rating.digest != shown.rating.digest and now.rating.total < shown.rating.total

    approval.version_approve(version=version, actor=board, reason="Fine.", **now.ids)  # decided again, on it
    version.refresh_from_db()
    assert version.status == "approved"
    decision = Decision.objects.get(version=version)
    assert (decision.action, decision.actor, decision.rating, decision.evaluation) == (
        "approve",
        board,
        now.rating,
        now.evaluation,
    )
    assert (decision.rating_digest, decision.evaluation_digest) == (now.rating.digest, now.evaluation.digest)
    event = AuditEvent.objects.get(action="version.approve", object_id=str(version.pk))
    assert event.data == {
        "decision": decision.pk,
        "rating": now.rating.pk,
        "rating_digest": now.rating.digest,
        "evaluation": now.evaluation.pk,
        "evaluation_digest": now.evaluation.digest,
    }


def test_an_approval_must_name_a_rating_and_evaluation_of_this_version(rated_with_a_critical, make_awaiting, board):
    other = make_awaiting("2.0.0")
    with pytest.raises(ValidationFailed) as refused:
        approval.version_approve(version=rated_with_a_critical, actor=board, **decision_basis(version=other).ids)
    assert refused.value.code == "basis_required"
    with pytest.raises(ValidationFailed):
        approval.version_approve(version=rated_with_a_critical, actor=board, rating_id=None, evaluation_id=None)
    rated_with_a_critical.refresh_from_db()
    assert rated_with_a_critical.status == "awaiting_decision"


def test_the_board_approves_from_the_decision_page_and_a_changed_rating_is_shown_side_by_side(
    client, rated_with_a_critical, author, board, board2
):
    version = rated_with_a_critical
    page = reverse("admin:reviews_stagereview_change", args=[current_review(version, "decision").pk])
    client.force_login(board)
    html = client.get(page).content.decode()
    shown = decision_basis(version=version)
    forms = decision_buttons(html)  # both buttons post the decision form, not the admin's change form
    assert forms.buttons == {"approve": "warden-decision", "reject": "warden-decision"} and not forms.nested
    assert html.count('<form id="warden-decision" method="post"') == 1
    assert f'name="rating_id" value="{shown.rating.pk}"' in html
    for refused_button in ("Claim</a>", ">Pass</a>", ">Fail</a>", "Request changes</a>", "Waive</a>"):
        assert refused_button not in html  # the board cannot take these on its stage

    from decisions.exemptions import exemption_approve

    exemption_approve(exemption=ask(author, version, policy_key="", finding=version.findings.get()), actor=board2)
    decide = reverse("admin:submissions_pluginversion_decide", args=[version.pk])
    form = {"decision": "approve", "next": page, "reason": "", **shown.ids}
    response = client.post(decide, form)
    assert response.status_code == 302 and response["Location"].startswith(f"{page}?compare={shown.rating.pk}.")
    compared = client.get(response["Location"]).content.decode()
    assert "The facts changed since the rating you were shown" in compared
    now = RiskRating.objects.filter(version=version).order_by("-pk").first()
    assert f"<strong>{shown.rating.total} ({shown.rating.get_band_display()})</strong>" in compared
    assert f"<strong>{now.total} ({now.get_band_display()})</strong>" in compared
    assert "findings.exempted" in compared  # what changed, by fact
    version.refresh_from_db()
    assert version.status == "awaiting_decision"

    latest = decision_basis(version=version)
    response = client.post(decide, {**form, **latest.ids})
    assert response.status_code == 302
    version.refresh_from_db()
    assert version.status == "approved"
    assert Decision.objects.get(version=version).evaluation == latest.evaluation


def test_rejecting_from_the_decision_form_needs_a_reason_and_records_what_was_shown(
    client, rated_with_a_critical, board
):
    version = rated_with_a_critical
    decide = reverse("admin:submissions_pluginversion_decide", args=[version.pk])
    shown = decision_basis(version=version)
    client.force_login(board)
    client.post(decide, {"decision": "reject", "reason": "", **shown.ids})
    version.refresh_from_db()
    assert version.status == "awaiting_decision"
    client.post(decide, {"decision": "reject", "reason": "Too much access.", **shown.ids})
    version.refresh_from_db()
    assert version.status == "rejected"
    decision = Decision.objects.get(version=version)
    assert (decision.action, decision.rating, decision.evaluation_digest) == (
        "reject",
        shown.rating,
        shown.evaluation.digest,
    )


def test_who_may_not_decide_gets_no_form_and_cannot_post_one(client, rated_with_a_critical, author, security):
    version = rated_with_a_critical
    decide = reverse("admin:submissions_pluginversion_decide", args=[version.pk])
    shown = decision_basis(version=version)
    for user in (author, security):
        client.force_login(user)
        page = client.get(reverse("admin:submissions_pluginversion_change", args=[version.pk]))
        assert page.status_code == 200  # both may read the version page
        assert 'name="decision"' not in page.content.decode()
        client.post(decide, {"decision": "approve", "reason": "", **shown.ids})
        version.refresh_from_db()
        assert version.status == "awaiting_decision"
    assert not Decision.objects.exists()


def test_authors_are_not_offered_the_boards_and_admins_list_actions(client, rated_with_a_critical, author, board):
    changelist = reverse("admin:submissions_pluginversion_changelist")
    client.force_login(author)
    actions = client.get(changelist).context["action_form"].fields["action"].choices
    names = {name for name, _label in actions}
    assert {"act_submit", "act_withdraw"} <= names
    assert not names & {"act_approve", "act_reject", "act_deploy", "act_roll_back", "act_revoke"}
    client.force_login(board)
    names = {name for name, _label in client.get(changelist).context["action_form"].fields["action"].choices}
    assert "act_revoke" in names and "act_submit" not in names


def test_auto_approval_records_the_rating_and_evaluation_it_approved(settings, tmp_path, make_awaiting):
    settings.WARDEN_AUTO_APPROVE_CATEGORIES = ["data-connector"]
    load(tmp_path, critical=policy_yaml("no-critical", "findings.open.critical == 0"))
    version = make_awaiting("1.0.0")
    version.refresh_from_db()
    assert version.status == "approved"
    decision = Decision.objects.get(version=version)
    evaluation = PolicyEvaluation.objects.filter(version=version, trigger="auto_approve").get()
    assert (decision.action, decision.actor, decision.evaluation, decision.rating) == (
        "auto_approve",
        None,
        evaluation,
        evaluation.rating,
    )


def test_a_change_of_facts_no_factor_weighs_still_refuses_the_approval(rated_with_a_critical, board):
    """A rating's digest covers its factors, not every fact: a changed manifest field that no
    factor weighs leaves the same digest, yet the board was shown other facts."""
    version = rated_with_a_critical
    shown = decision_basis(version=version)
    version.manifest = {**version.manifest, "plugin": {**version.manifest["plugin"], "license": "Apache-2.0"}}
    version.save(update_fields=["manifest"])  # the manifest is in the facts; no factor weighs the licence
    with pytest.raises(FactsChanged):
        approval.version_approve(version=version, actor=board, **shown.ids)
    now = decision_basis(version=version)
    assert now.rating.pk != shown.rating.pk and now.rating.digest == shown.rating.digest
    assert now.rating.facts["manifest"]["plugin"]["license"] == "Apache-2.0"


def test_a_stored_fact_document_digests_as_it_was_computed():
    """jsonb has no negative zero and writes floats of 1e16 or more as integers: a fact
    document is put in that form before it is digested, so its stored copy digests the same."""
    from decisions.rubric import as_stored, digest_of

    document = {"a": -0.0, "b": [1e16, -2.5e20], "c": {"d": 0.25, "e": 3, "f": True}}
    assert as_stored(document) == {"a": 0.0, "b": [10**16, -25 * 10**19], "c": {"d": 0.25, "e": 3, "f": True}}
    assert digest_of(as_stored(document)) == digest_of(json_round_trip(as_stored(document)))
    assert "-0.0" not in repr(as_stored(document))


def json_round_trip(value):
    import json

    return json.loads(json.dumps(value))


def test_a_performance_change_that_rounds_to_minus_zero_does_not_refuse_every_approval(make_awaiting, board):
    """round(-0.04, 1) is -0.0, which PostgreSQL's float column keeps and its jsonb column
    does not: the stored facts then always differed from the computed ones and every approval
    was refused as "facts changed" (seen in load_demo on PostgreSQL)."""
    from reviews.models import CheckRun, PerformanceMetric

    version = make_awaiting("1.0.0")
    run = CheckRun.objects.create(version=version, check_key="performance.harness")
    PerformanceMetric.objects.create(
        check_run=run,
        version=version,
        kpi="startup_ms",
        value=99.96,
        unit="ms",
        baseline_value=100.0,
        change_percent=-0.0,
    )
    first = version_reassess(version=version, actor=board)
    approval.version_approve(version=version, actor=board, reason="Low risk.", **decision_basis(version=version).ids)
    version.refresh_from_db()
    assert version.status == "approved"
    assert RiskRating.objects.filter(version=version).order_by("-pk").first().pk == first.rating.pk
