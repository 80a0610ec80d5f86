"""The version dossier: one page with every piece of evidence, read by each role as it may,
loaded in a constant number of queries, and the forms it posts (triage, assessments, threads,
stage actions), each changing nothing when refused."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from compliance.evidence import evidence_upload
from compliance.models import Checklist, Control, ControlAssessment, Framework
from governance.models import AuditEvent
from reviews import services as review_services
from reviews.collaboration import annotation_add
from reviews.models import CheckRun, Finding, FindingTriage
from tests.conftest import current_review, open_review


def dossier(version) -> str:
    return reverse("admin:submissions_pluginversion_dossier", args=[version.pk])


def add_findings(version, n: int, *, severity: str = "high") -> list[Finding]:
    review = current_review(version, "security")
    run = CheckRun.objects.create(
        version=version, stage_review=review, check_key="security.bandit", status="failed", revision=version.revision
    )
    return Finding.objects.bulk_create(
        Finding(
            check_run=run,
            version=version,
            kind="security",
            severity=severity,
            rule_id=f"B6{i:02}",
            title=f"finding {i}",
            path="acme_exporter/__init__.py",
            line=i + 1,
            snippet=f"subprocess.call(cmd{i}, shell=True)  </pre><script>alert({i})</script>",
            fingerprint=f"{i:064x}",
            location_key=f"acme_exporter/__init__.py:{i + 1}:B6{i:02}",
        )
        for i in range(n)
    )


def queries_to_render(client, version) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(dossier(version))
    assert response.status_code == 200
    return len(captured)


def test_the_dossier_loads_in_the_same_number_of_queries_at_5_and_50_findings(client, in_review, security):
    add_findings(in_review, 5)
    client.force_login(security)
    queries_to_render(client, in_review)  # warm per-process caches (content types, permissions)
    at_5 = queries_to_render(client, in_review)
    add_findings(in_review, 45, severity="medium")
    at_50 = queries_to_render(client, in_review)
    assert at_5 == at_50, f"{at_5} queries at 5 findings, {at_50} at 50"


def test_each_role_reads_the_dossier_and_an_author_of_another_organisation_gets_404(
    client, in_review, security, board, author, other_author
):
    add_findings(in_review, 2)
    for user in (security, board, author):
        client.force_login(user)
        page = client.get(dossier(in_review))
        assert page.status_code == 200, user
        body = page.content.decode()
        assert "finding 0" in body and 'id="audit"' in body
        # the plugin wrote the snippet: it is shown, never run
        assert "<script>alert(0)</script>" not in body and "&lt;script&gt;alert(0)&lt;/script&gt;" in body
    client.force_login(other_author)
    assert client.get(dossier(in_review)).status_code == 404
    assert client.post(dossier(in_review) + "triage/", {}).status_code == 404


def test_a_reviewer_triages_a_finding_from_the_dossier_and_an_author_cannot(client, in_review, security, author):
    finding = add_findings(in_review, 1)[0]
    url = dossier(in_review) + "triage/"
    client.force_login(author)
    page = client.get(dossier(in_review)).content.decode()
    assert 'name="to_state"' not in page  # no triage form for the vendor
    response = client.post(url, {"finding": finding.pk, "to_state": "false_positive", "reason": "mine is fine"})
    assert response.status_code == 302
    finding.refresh_from_db()
    assert finding.triage == "open" and not FindingTriage.objects.exists()

    client.force_login(security)
    assert 'name="to_state"' in client.get(dossier(in_review)).content.decode()
    response = client.post(url, {"finding": finding.pk, "to_state": "false_positive", "reason": "Test fixture only."})
    assert response.status_code == 302 and response["Location"].endswith(dossier(in_review) + "#findings")
    finding.refresh_from_db()
    assert finding.triage == "false_positive"
    assert AuditEvent.objects.filter(action="finding.triage", reason="Test fixture only.").count() == 1
    # a remediation plan without its due date is refused, and says so
    response = client.post(url, {"finding": finding.pk, "to_state": "remediation_planned", "reason": "x", "plan": "y"})
    finding.refresh_from_db()
    assert finding.triage == "false_positive"
    messages = [str(m) for m in response.wsgi_request._messages]
    assert any("plan" in m for m in messages), messages


def test_a_finding_of_another_version_cannot_be_triaged_through_this_dossier(
    client, in_review, security, make_awaiting
):
    other = add_findings(make_awaiting("2.0.0"), 1)[0]
    client.force_login(security)
    client.post(dossier(in_review) + "triage/", {"finding": other.pk, "to_state": "fixed", "reason": "sneaky"})
    other.refresh_from_db()
    assert other.triage == "open"


@pytest.fixture
def with_controls(in_review, platform_admin):
    """Three controls on the checklist; the compliance stage opens once eligibility passes."""
    framework = Framework.objects.create(key="demo", name="Demo", version="1")
    for key in ("a", "b", "c"):
        Control.objects.create(framework=framework, key=key, text=f"Control {key} text", criticality="medium")
    Checklist.objects.create(name="Every plugin").frameworks.add(framework)
    if current_review(in_review, "eligibility").status != "passed":
        review_services.stage_pass(review=open_review(in_review, "eligibility"), actor=platform_admin)
    return in_review


def _compliance_assessments(version):
    return list(open_review(version, "compliance").assessments.order_by("control__key"))


def test_the_officer_assesses_several_controls_at_once_and_a_refused_one_changes_none(
    client, with_controls, compliance, security
):
    a, b, c = _compliance_assessments(with_controls)
    url = dossier(with_controls) + "assess/"
    client.force_login(compliance)
    page = client.get(dossier(with_controls)).content.decode()
    assert f'name="result-{a.pk}"' in page and "Control a text" in page
    # one row without its reason: nothing is saved
    client.post(url, {f"result-{a.pk}": "met", f"reason-{a.pk}": "Seen.", f"result-{b.pk}": "met"})
    assert set(ControlAssessment.objects.values_list("result", flat=True)) == {"pending"}
    response = client.post(
        url,
        {
            f"result-{a.pk}": "met",
            f"reason-{a.pk}": "Seen the policy.",
            f"result-{b.pk}": "not_applicable",
            f"reason-{b.pk}": "No personal data.",
            f"result-{c.pk}": "",
        },
    )
    assert response.status_code == 302 and response["Location"].endswith("#compliance")
    results = dict(ControlAssessment.objects.values_list("control__key", "result"))
    assert results == {"a": "met", "b": "not_applicable", "c": "pending"}
    assert AuditEvent.objects.filter(action="control.assess").count() == 2
    # a security reviewer is not a compliance officer: refused, nothing changes
    client.force_login(security)
    assert f'name="result-{c.pk}"' not in client.get(dossier(with_controls)).content.decode()
    client.post(url, {f"result-{c.pk}": "met", f"reason-{c.pk}": "Looks fine."})
    assert ControlAssessment.objects.get(pk=c.pk).result == "pending"


def test_threads_are_read_replied_to_and_resolved_on_the_dossier(client, in_review, security, author):
    thread = annotation_add(version=in_review, actor=security, body="Why does it call out?", to_author=True)
    url = dossier(in_review) + "thread/"
    client.force_login(author)
    assert "Why does it call out?" in client.get(dossier(in_review)).content.decode()
    client.post(url, {"parent": thread.pk, "body": "To fetch the exchange rates."})
    assert thread.replies.get().body == "To fetch the exchange rates."
    client.post(url, {"resolve": thread.pk})  # the vendor does not close the reviewers' question
    thread.refresh_from_db()
    assert thread.resolved_at is None
    client.force_login(security)
    client.post(url, {"resolve": thread.pk})
    thread.refresh_from_db()
    assert thread.resolved_at is not None


def test_a_stage_action_posted_from_the_dossier_comes_back_to_it(client, with_controls, security):
    in_review = with_controls
    review = open_review(in_review, "security")
    client.force_login(security)
    page = client.get(dossier(in_review)).content.decode()
    act = reverse("admin:reviews_stagereview_act", args=[review.pk, "pass"])
    assert f'formaction="{act}"' in page
    back = dossier(in_review) + f"#stage-{review.pk}"
    response = client.post(act, {"reason": "Reviewed the code and the scans.", "next": back})
    assert response.status_code == 302 and response["Location"] == back
    review.refresh_from_db()
    assert review.status == "passed"
    # a next that leaves the site is ignored
    response = client.post(act, {"reason": "again", "next": "https://evil.example/"})
    assert response["Location"] == reverse("admin:reviews_stagereview_change", args=[review.pk])


def test_the_officer_decides_evidence_with_the_controls_in_one_post_and_a_missing_reason_saves_nothing(
    client, with_controls, compliance, author
):
    a, _b, _c = _compliance_assessments(with_controls)
    evidence = evidence_upload(
        version=with_controls,
        controls=[a.control],
        kind="policy",
        file=SimpleUploadedFile("policy.pdf", b"%PDF-1.4 a policy"),
        actor=author,
    )
    url = dossier(with_controls) + "assess/"
    client.force_login(compliance)
    page = client.get(dossier(with_controls)).content.decode()
    assert f'name="evidence-{evidence.pk}"' in page and "policy.pdf" in page
    both = {f"result-{a.pk}": "met", f"reason-{a.pk}": "The policy covers it.", f"evidence-{evidence.pk}": "accept"}
    client.post(url, both)  # the evidence's reason is missing: neither is saved
    evidence.refresh_from_db()
    assert evidence.status == "in_review" and ControlAssessment.objects.get(pk=a.pk).result == "pending"
    client.post(url, {**both, f"evidence-reason-{evidence.pk}": "Signed and current."})
    evidence.refresh_from_db()
    assert evidence.status == "accepted" and ControlAssessment.objects.get(pk=a.pk).result == "met"


def test_the_authors_do_not_learn_of_the_reviewers_internal_threads_from_the_audit_trail(
    client, in_review, security, author
):
    annotation_add(version=in_review, actor=security, body="Between us: is this vendor reliable?")
    annotation_add(version=in_review, actor=security, body="Please explain the network call.", to_author=True)

    def trail(user) -> list:
        client.force_login(user)
        return [
            e.data.get("to_author")
            for e in client.get(dossier(in_review)).context["audit"]
            if e.action == "annotation.add"
        ]

    assert sorted(trail(security)) == [False, True]
    assert trail(author) == [True]
    client.force_login(author)  # nor from the version's own page
    change = client.get(reverse("admin:submissions_pluginversion_change", args=[in_review.pk])).content.decode()
    assert change.count("annotation.add") == 1


def test_the_dossier_says_where_the_version_runs(client, make_approved, environment, platform_admin, board):
    from decisions.deployment import version_deploy

    version = make_approved("1.0.0")
    version_deploy(version=version, environment=environment, actor=platform_admin, reason="Release 1.0.")
    client.force_login(board)
    body = client.get(dossier(version)).content.decode()
    assert "Environments:" in body and "Production: running" in body
