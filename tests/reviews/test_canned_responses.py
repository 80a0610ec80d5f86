"""Canned responses (reviews/responses.py): platform admins keep them through an audited
service; a reviewer failing a stage or requesting changes picks some that apply to the stage;
the decision keeps a copy of each as it read then, and the author is shown each with the
findings of its check."""

import pytest
from django.conf import settings
from django.urls import reverse

from decisions.policies import policies_sync, policy_files_load
from governance.errors import PermissionRefused, ValidationFailed
from governance.models import AuditEvent
from reviews import services as review_services
from reviews.models import CannedResponse, ReviewStatus, UsedResponse
from reviews.responses import (
    canned_response_save,
    draft_reason,
    response_evidence,
    response_evidence_by_review,
    responses_for,
)
from submissions import services as sub
from submissions.models import VersionStatus
from submissions.samples import plugin_archive
from tests.admin_forms import browser_post
from tests.conftest import current_review, last_audit, open_review

pytestmark = pytest.mark.django_db

ADD = reverse("admin:reviews_cannedresponse_add")
LIST = reverse("admin:reviews_cannedresponse_changelist")


@pytest.fixture
def policies(platform_admin):
    policies_sync(documents=policy_files_load(directory=settings.WARDEN_POLICY_DIR), actor=platform_admin)


def make(actor, key: str, **fields) -> CannedResponse:
    defaults = {
        "title": key.replace("-", " ").capitalize(),
        "text": f"The text of {key}.",
        "stage_kinds": ["eligibility"],
    }
    response = CannedResponse(key=key, **{**defaults, **fields})
    return canned_response_save(response=response, actor=actor, changed=["key", *defaults, *fields])


@pytest.fixture
def docs(platform_admin):
    return make(
        platform_admin,
        "missing-docs",
        title="Documentation is missing",
        text="Add the documentation plugin.toml names.",
        check_key="eligibility.docs",
    )


@pytest.fixture
def licence(platform_admin):
    return make(platform_admin, "licence", title="Licence not allowed", check_key="eligibility.licence")


@pytest.fixture
def short_usage(plugin, author, pipeline, django_capture_on_commit_callbacks):
    """A version in review whose usage document is too short: eligibility.docs has a finding."""
    version = sub.version_create(
        plugin=plugin,
        artifact=plugin_archive(plugin.name, "1.4.0", files={"docs/USAGE.md": b"# Usage\n\nTODO\n"}),
        actor=author,
    )
    with django_capture_on_commit_callbacks(execute=True):
        sub.version_submit(version=version, actor=author)
    version.refresh_from_db()
    return version


def act_url(review, action: str) -> str:
    return reverse("admin:reviews_stagereview_act", args=[review.pk, action])


# -- deciding with responses -----------------------------------------------------------------


def test_two_responses_are_kept_as_they_read_and_the_audit_lists_their_keys(in_review, platform_admin, docs, licence):
    review = open_review(in_review, "eligibility")
    edited = draft_reason(responses=[docs, licence]) + "\n\nUSAGE.md in particular."
    review_services.stage_request_changes(review=review, actor=platform_admin, reason=edited, responses=[docs, licence])

    review.refresh_from_db()
    in_review.refresh_from_db()
    assert (review.status, in_review.status) == (ReviewStatus.CHANGES_REQUESTED, VersionStatus.CHANGES_REQUESTED)
    assert review.decision_reason == edited  # what the reviewer wrote, not the canned texts
    used = list(review.responses_used.values_list("position", "key", "title", "text", "check_key", "response"))
    assert used == [
        (
            0,
            "missing-docs",
            "Documentation is missing",
            "Add the documentation plugin.toml names.",
            "eligibility.docs",
            docs.pk,
        ),
        (1, "licence", "Licence not allowed", "The text of licence.", "eligibility.licence", licence.pk),
    ]
    event = last_audit(review)
    assert (event.action, event.actor, event.data) == (
        "stage.request_changes",
        platform_admin,
        {"responses": ["missing-docs", "licence"]},
    )


def test_failing_with_a_response_keeps_it_too(in_review, platform_admin, licence):
    review = open_review(in_review, "eligibility")
    review_services.stage_fail(review=review, actor=platform_admin, reason="GPL is not allowed.", responses=[licence])
    review.refresh_from_db()
    assert review.status == ReviewStatus.FAILED
    assert list(review.responses_used.values_list("key", flat=True)) == ["licence"]
    assert AuditEvent.objects.get(action="stage.fail").data == {"responses": ["licence"]}


def test_without_responses_the_decision_is_as_before(in_review, platform_admin):
    review = open_review(in_review, "eligibility")
    review_services.stage_fail(review=review, actor=platform_admin, reason="Licence not allowed.")
    assert not UsedResponse.objects.exists()
    assert AuditEvent.objects.get(action="stage.fail").data == {}


@pytest.mark.parametrize("problem", ["inactive", "other_stage"])
def test_an_inactive_or_other_stage_response_is_refused_and_nothing_changes(in_review, platform_admin, docs, problem):
    if problem == "inactive":
        wrong = make(platform_admin, "retired", is_active=False)
    else:
        wrong = make(platform_admin, "security-only", stage_kinds=["security"])
    review = open_review(in_review, "eligibility")
    events = AuditEvent.objects.count()
    with pytest.raises(ValidationFailed) as refused:
        review_services.stage_request_changes(
            review=review, actor=platform_admin, reason="Please fix.", responses=[docs, wrong]
        )
    assert refused.value.code == "response_refused"
    assert wrong.title in refused.value.detail and docs.title not in refused.value.detail
    review.refresh_from_db()
    in_review.refresh_from_db()
    assert (review.status, in_review.status) == (ReviewStatus.IN_PROGRESS, VersionStatus.IN_REVIEW)
    assert review.decision_reason == ""
    assert not UsedResponse.objects.exists()
    assert AuditEvent.objects.count() == events


def test_a_response_deactivated_after_it_was_picked_is_refused(in_review, platform_admin, docs):
    picked = CannedResponse.objects.get(pk=docs.pk)  # the page showed it active
    docs.is_active = False
    canned_response_save(response=docs, actor=platform_admin, changed=["is_active"])
    with pytest.raises(ValidationFailed):
        review_services.stage_fail(
            review=open_review(in_review, "eligibility"), actor=platform_admin, reason="Docs.", responses=[picked]
        )
    assert not UsedResponse.objects.exists()


def test_the_reviewer_is_offered_the_active_responses_of_its_stage(in_review, platform_admin, docs, licence):
    make(platform_admin, "retired", is_active=False)
    make(platform_admin, "security-only", stage_kinds=["security"])
    make(platform_admin, "both", title="Applies to both", stage_kinds=["eligibility", "security"])
    assert [r.key for r in responses_for(review=open_review(in_review, "eligibility"))] == [
        "both",
        "missing-docs",
        "licence",
    ]
    assert [r.key for r in responses_for(review=current_review(in_review, "compliance"))] == []


# -- what the author is shown ------------------------------------------------------------------


def test_the_evidence_is_the_findings_of_the_responses_check(
    short_usage, platform_admin, docs, policies, django_assert_num_queries
):
    critical = make(
        platform_admin, "open-critical", policy_key="no-open-critical-findings", stage_kinds=["eligibility"]
    )
    review = open_review(short_usage, "eligibility")
    finding = short_usage.findings.get(check_run__check_key="eligibility.docs")
    review_services.stage_request_changes(
        review=review, actor=platform_admin, reason="Write the usage guide.", responses=[docs, critical]
    )

    shown = response_evidence(review=review)
    assert [(e.key, e.text, e.check_key, e.check_title, e.policy_key) for e in shown] == [
        ("missing-docs", docs.text, "eligibility.docs", "Documentation is complete", ""),
        ("open-critical", critical.text, "", "", "no-open-critical-findings"),
    ]
    assert shown[0].findings == [finding]
    assert finding.title == "docs.usage: docs/USAGE.md is too short"
    assert shown[1].findings == []  # a policy's outcome is the dossier's to look up
    with django_assert_num_queries(3):  # used responses, the current runs, their findings
        by_review = response_evidence_by_review(version=short_usage)
    assert list(by_review) == [review.pk]


def test_editing_a_response_later_does_not_change_what_the_decided_review_shows(in_review, platform_admin, docs):
    review = open_review(in_review, "eligibility")
    review_services.stage_request_changes(review=review, actor=platform_admin, reason="Docs, please.", responses=[docs])
    docs.title, docs.text = "Docs (new wording)", "Completely different advice."
    canned_response_save(response=docs, actor=platform_admin, changed=["title", "text"])

    [shown] = response_evidence(review=review)
    assert (shown.title, shown.text) == ("Documentation is missing", "Add the documentation plugin.toml names.")
    assert CannedResponse.objects.get(pk=docs.pk).text == "Completely different advice."


# -- the stage review's action URL, as the dossier posts to it ------------------------------------


def test_the_action_url_takes_the_chosen_responses(client, in_review, platform_admin, docs, licence):
    review = open_review(in_review, "eligibility")
    client.force_login(platform_admin)
    response = client.post(
        act_url(review, "request_changes"), {"reason": "Docs and licence.", "responses": [licence.pk, docs.pk]}
    )
    assert response.status_code == 302
    review.refresh_from_db()
    assert review.status == ReviewStatus.CHANGES_REQUESTED
    assert list(review.responses_used.values_list("key", flat=True)) == ["licence", "missing-docs"]


@pytest.mark.parametrize("posted", [["abc"], ["999999"]])
def test_a_bad_response_id_is_an_error_message_and_nothing_changes(client, in_review, platform_admin, posted):
    review = open_review(in_review, "eligibility")
    client.force_login(platform_admin)
    response = client.post(act_url(review, "fail"), {"reason": "No.", "responses": posted}, follow=True)
    assert response.status_code == 200
    assert "Fail refused" in response.content.decode()
    review.refresh_from_db()
    assert review.status == ReviewStatus.IN_PROGRESS


def test_the_confirm_page_carries_the_responses_until_a_reason_is_given(client, in_review, platform_admin, docs):
    review = open_review(in_review, "eligibility")
    client.force_login(platform_admin)
    page = client.post(act_url(review, "fail"), {"reason": "", "responses": [docs.pk]})
    assert page.status_code == 200  # asked for the reason
    assert f'<input type="hidden" name="responses" value="{docs.pk}">' in page.content.decode()
    review.refresh_from_db()
    assert review.status == ReviewStatus.IN_PROGRESS


def test_other_actions_ignore_posted_responses(client, in_review, platform_admin, docs):
    review = open_review(in_review, "eligibility")
    client.force_login(platform_admin)
    assert client.post(act_url(review, "pass"), {"reason": "", "responses": [docs.pk]}).status_code == 302
    review.refresh_from_db()
    assert review.status == ReviewStatus.PASSED
    assert not UsedResponse.objects.exists()


# -- keeping them: the admin and its service ---------------------------------------------------


def test_a_platform_admin_creates_and_edits_a_response_in_the_admin(client, platform_admin, policies):
    client.force_login(platform_admin)
    form = {
        "key": "undeclared-network",
        "title": "Undeclared network access",
        "text": "Declare every host under [permissions] network.",
        "check_key": "security.guarddog",
        "policy_key": "no-undeclared-capabilities",
        "stage_kinds": ["security"],
        "is_active": "on",
    }
    assert client.post(ADD, form).status_code == 302
    response = CannedResponse.objects.get(key="undeclared-network")
    assert (response.check_key, response.policy_key, response.stage_kinds) == (
        "security.guarddog",
        "no-undeclared-capabilities",
        ["security"],
    )
    created = last_audit(response)
    assert (created.action, created.actor, created.data["key"]) == (
        "canned_response.create",
        platform_admin,
        "undeclared-network",
    )

    change = reverse("admin:reviews_cannedresponse_change", args=[response.pk])
    page = client.get(change)
    assert client.post(change, browser_post(page, text="Declare every host, with its port.")).status_code == 302
    response.refresh_from_db()
    assert response.text == "Declare every host, with its port."
    changed = last_audit(response)
    assert (changed.action, changed.data) == (
        "canned_response.change",
        {"key": "undeclared-network", "changed": ["text"]},
    )
    assert response.history.first().history_user == platform_admin
    assert response.history.count() == 2


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("check_key", "security.nonsense", "Select a valid choice"),
        ("policy_key", "no-such-policy", "Select a valid choice"),
        ("stage_kinds", [], "This field is required"),
        ("stage_kinds", ["decision"], "Select a valid choice"),
    ],
)
def test_the_admin_form_refuses_what_does_not_exist(client, platform_admin, policies, field, value, error):
    client.force_login(platform_admin)
    form = {"key": "k", "title": "T", "text": "x", "stage_kinds": ["security"], field: value}
    page = client.post(ADD, form)
    assert page.status_code == 200
    assert error in page.content.decode()
    assert not CannedResponse.objects.exists()


def test_the_service_checks_checks_policies_and_kinds(platform_admin, policies):
    with pytest.raises(ValidationFailed) as refused:
        make(
            platform_admin, "bad", check_key="security.nonsense", policy_key="no-such-policy", stage_kinds=["decision"]
        )
    assert {e["field"] for e in refused.value.errors} == {"check_key", "policy_key", "stage_kinds"}
    assert "No current policy 'no-such-policy'" in str(refused.value.errors)
    assert not CannedResponse.objects.exists()


def test_only_platform_admins_keep_responses_and_reviewers_read_them(client, security, author, platform_admin, docs):
    with pytest.raises(PermissionRefused):
        make(security, "by-a-reviewer")
    docs.text = "Changed by a reviewer."
    with pytest.raises(PermissionRefused):
        canned_response_save(response=docs, actor=security, changed=["text"])
    assert CannedResponse.objects.get(pk=docs.pk).text == "Add the documentation plugin.toml names."

    client.force_login(security)
    assert client.get(LIST).status_code == 200
    assert client.get(ADD).status_code == 403
    change = reverse("admin:reviews_cannedresponse_change", args=[docs.pk])
    assert (
        client.post(change, {"key": docs.key, "title": "x", "text": "x", "stage_kinds": ["eligibility"]}).status_code
        == 403
    )
    client.force_login(author)
    assert client.get(LIST).status_code == 403


@pytest.mark.parametrize("rows", [2, 20])
def test_the_list_runs_a_constant_number_of_queries(client, platform_admin, rows, django_assert_num_queries):
    for i in range(rows):
        make(platform_admin, f"response-{i}")
    client.force_login(platform_admin)
    client.get(LIST)
    with django_assert_num_queries(12):
        page = client.get(LIST)
    assert page.context["cl"].result_count == rows
