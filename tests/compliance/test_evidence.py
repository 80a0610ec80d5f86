"""Evidence (revisions, validation, who sees it) and the compliance sign-off."""

from pathlib import Path

import pytest
import yaml
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from compliance.evidence import assessment_decide, compliance_sign_off, evidence_decide, evidence_upload
from compliance.models import Checklist, ComplianceSignOff, Control, ControlAssessment, Evidence
from compliance.services import framework_import
from governance.errors import PermissionRefused, TransitionRefused, ValidationFailed
from reviews import services as review
from reviews.models import ReviewStatus
from tests.conftest import last_audit, open_review

pytestmark = pytest.mark.django_db
DEFAULT = Path(__file__).resolve().parents[2] / "compliance" / "frameworks" / "default.yaml"
PDF = b"%PDF-1.7\n% a data-flow diagram\n"


@pytest.fixture
def compliance_review(in_review, platform_admin):
    framework, _created = framework_import(document=yaml.safe_load(DEFAULT.read_text()))
    Checklist.objects.create(name="Every plugin").frameworks.add(framework)
    review.stage_pass(review=open_review(in_review, "eligibility"), actor=platform_admin)
    return open_review(in_review, "compliance")


def pdf(name="flow.pdf", data=PDF):
    return SimpleUploadedFile(name, data)


def controls(*keys):
    return list(Control.objects.filter(key__in=keys))


def test_a_new_upload_is_a_new_revision_and_keeps_the_old(compliance_review, author):
    version = compliance_review.version
    first = evidence_upload(
        version=version, controls=controls("sub-processors"), kind="policy", file=pdf(), actor=author
    )
    second = evidence_upload(
        version=version,
        controls=controls("sub-processors"),
        kind="policy",
        file=pdf(data=PDF + b"v2"),
        actor=author,
        replaces=first,
    )
    assert (second.revision, second.previous) == (2, first)
    assert first.sha256 != second.sha256 and Evidence.objects.count() == 2
    assessment = ControlAssessment.objects.get(stage_review=compliance_review, control__key="sub-processors")
    assert assessment.status == "in_review"


@pytest.mark.parametrize(
    ("upload", "message"),
    [
        (SimpleUploadedFile("page.html", b"<html><script>alert(1)</script>"), "must be one of"),
        (SimpleUploadedFile("fake.pdf", b"<html>not a pdf</html>"), "is not really a .pdf file"),
        (SimpleUploadedFile("notes.txt", b"<!DOCTYPE html><html></html>"), "is not plain text"),
        (SimpleUploadedFile("empty.pdf", b""), "between 1 byte"),
    ],
)
def test_uploads_are_validated_and_leave_nothing(compliance_review, author, upload, message):
    with pytest.raises(ValidationFailed, match=message):
        evidence_upload(version=compliance_review.version, controls=[], kind="other", file=upload, actor=author)
    assert not Evidence.objects.exists()


def test_outsiders_neither_upload_nor_see_evidence(client, compliance_review, author, other_author):
    with pytest.raises(PermissionRefused):
        evidence_upload(version=compliance_review.version, controls=[], kind="other", file=pdf(), actor=other_author)
    evidence = evidence_upload(version=compliance_review.version, controls=[], kind="other", file=pdf(), actor=author)
    client.force_login(other_author)
    assert client.get(reverse("admin:compliance_evidence_changelist")).context["cl"].result_count == 0
    assert client.get(reverse("admin:compliance_evidence_download", args=[evidence.pk])).status_code == 404
    client.force_login(author)
    download = client.get(reverse("admin:compliance_evidence_download", args=[evidence.pk]))
    assert download.status_code == 200 and download["Content-Type"] == "application/octet-stream"
    assert download["Content-Disposition"].startswith("attachment")
    assert b"".join(download.streaming_content) == PDF


def test_sign_off_is_refused_while_anything_is_open(compliance_review, compliance, author):
    version = compliance_review.version
    with pytest.raises(TransitionRefused, match="while anything is open: control data-handling/access-control"):
        compliance_sign_off(review=compliance_review, actor=compliance, residual_risk="low", statement="Fine.")
    manual = ControlAssessment.objects.filter(stage_review=compliance_review, status="todo")
    for assessment in manual:
        assessment_decide(assessment=assessment, actor=compliance, result="met", reason="Seen in the docs.")
    evidence = evidence_upload(
        version=version, controls=controls("audit-logging"), kind="policy", file=pdf(), actor=author
    )
    with pytest.raises(TransitionRefused, match="is in review"):
        compliance_sign_off(review=compliance_review, actor=compliance, residual_risk="low", statement="Fine.")
    with pytest.raises(PermissionRefused):
        evidence_decide(evidence=evidence, actor=author, accept=True, reason="Mine is good.")
    evidence_decide(evidence=evidence, actor=compliance, accept=True, reason="Clear diagram.")
    sign_off = compliance_sign_off(
        review=compliance_review,
        actor=compliance,
        residual_risk="medium",
        statement="Sub-processor in the US; contract reviewed.",
    )
    compliance_review.refresh_from_db()
    assert compliance_review.status == ReviewStatus.PASSED
    assert (sign_off.residual_risk, ComplianceSignOff.objects.count()) == ("medium", 1)


def test_a_high_control_not_met_forces_a_failure_or_changes(compliance_review, compliance):
    for assessment in ControlAssessment.objects.filter(stage_review=compliance_review, status="todo"):
        assessment_decide(assessment=assessment, actor=compliance, result="met", reason="OK")
    residency = ControlAssessment.objects.get(stage_review=compliance_review, control__key="data-residency")
    assessment_decide(assessment=residency, actor=compliance, result="not_met", reason="Stores data in the US.")
    with pytest.raises(TransitionRefused, match=r"High-criticality controls are not met .*data-residency"):
        compliance_sign_off(review=compliance_review, actor=compliance, residual_risk="high", statement="Risky.")
    assert not ComplianceSignOff.objects.exists()
    compliance_review.refresh_from_db()
    assert compliance_review.status == ReviewStatus.IN_PROGRESS


def test_the_compliance_stage_passes_only_by_sign_off(compliance_review, compliance):
    with pytest.raises(TransitionRefused, match="passes by a compliance sign-off"):
        review.stage_pass(review=compliance_review, actor=compliance)


def test_the_compliance_workflow_in_the_admin(client, compliance_review, compliance, author):
    page_url = reverse("admin:reviews_stagereview_change", args=[compliance_review.pk])
    client.force_login(author)
    upload = client.post(
        reverse("admin:compliance_evidence_add"),
        {
            "version": compliance_review.version_id,
            "controls": [c.pk for c in controls("sub-processors")],
            "kind": "policy",
            "description": "Our sub-processors",
            "upload": pdf(),
        },
    )
    assert upload.status_code == 302
    evidence = Evidence.objects.get()
    client.force_login(compliance)
    page = client.get(page_url).content.decode()
    assert "Sign off (low residual risk)" in page and ">Pass<" not in page
    assert reverse("admin:compliance_evidence_change", args=[evidence.pk]) in page  # evidence beside its control
    response = client.post(
        reverse("admin:compliance_evidence_act", args=[evidence.pk, "accept"]),
        {"reason": "Complete list."},
        follow=True,
    )
    assert "Accept: done" in response.content.decode()
    for assessment in ControlAssessment.objects.filter(stage_review=compliance_review).exclude(status="done"):
        url = reverse("admin:compliance_controlassessment_act", args=[assessment.pk, "met"])
        assert "as met in" in client.post(url, {"reason": "Checked."}, follow=True).content.decode()
    history = client.get(reverse("admin:compliance_controlassessment_history", args=[assessment.pk]))
    assert history.status_code == 200
    response = client.post(
        reverse("admin:reviews_stagereview_act", args=[compliance_review.pk, "sign_off_medium"]),
        {"reason": "One US sub-processor under contract."},
        follow=True,
    )
    assert "done" in response.content.decode()
    compliance_review.refresh_from_db()
    assert compliance_review.status == ReviewStatus.PASSED
    assert compliance_review.sign_off.residual_risk == "medium"


def test_a_control_assessment_can_be_discussed(compliance_review, compliance, security, in_review):
    from reviews.collaboration import annotation_add

    assessment = ControlAssessment.objects.get(stage_review=compliance_review, control__key="access-control")
    thread = annotation_add(
        version=compliance_review.version,
        actor=compliance,
        assessment=assessment,
        body="@security do the network permissions look minimal to you?",
        kind="comment",
    )
    reply = annotation_add(version=compliance_review.version, actor=security, body="Yes.", parent=thread)
    assert reply.assessment == assessment
    assert list(assessment.annotations.order_by("pk")) == [thread, reply]


def test_evidence_puts_its_controls_in_review_by_their_transition_with_history_and_audit(compliance_review, author):
    evidence = evidence_upload(
        version=compliance_review.version, controls=controls("sub-processors"), kind="policy", file=pdf(), actor=author
    )

    assessment = ControlAssessment.objects.get(stage_review=compliance_review, control__key="sub-processors")
    assert assessment.status == "in_review"
    assert assessment.history.first().history_user == author
    event = last_audit(assessment)
    assert (event.action, event.from_state, event.to_state) == ("control.await_review", "todo", "in_review")
    assert event.data["evidence"] == evidence.pk
    with pytest.raises(AttributeError):
        assessment.status = "done"  # only a transition moves it (protected FSMField)
    with pytest.raises(AttributeError):
        evidence.status = "accepted"
