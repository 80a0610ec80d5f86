"""Frameworks as YAML and the automatic evaluation of controls from the manifest."""

from io import StringIO
from pathlib import Path

import pytest
import yaml
from django.core.management import CommandError, call_command

from compliance.models import Checklist, ControlAssessment, Framework
from compliance.services import framework_import
from governance.errors import ValidationFailed
from reviews import services as review
from submissions import services as sub
from submissions.samples import MANIFEST_TEMPLATE, plugin_archive
from tests.conftest import open_review

pytestmark = pytest.mark.django_db
DEFAULT = Path(__file__).resolve().parents[2] / "compliance" / "frameworks" / "default.yaml"


@pytest.fixture
def checklist():
    framework, _created = framework_import(document=yaml.safe_load(DEFAULT.read_text()))
    checklist = Checklist.objects.create(name="Every plugin")
    checklist.frameworks.add(framework)
    return checklist


def pii_manifest(number: str, *, at_rest: bool) -> str:
    text = MANIFEST_TEMPLATE.format(
        name="acme-exporter", version=number, module="acme_exporter", category="data-connector"
    )
    text = text.replace('categories = ["usage"]', 'categories = ["pii", "usage"]')
    return text.replace("encryption_at_rest = true", f"encryption_at_rest = {'true' if at_rest else 'false'}")


def compliance_assessments(plugin, author, platform_admin, number, capture, **archive):
    version = sub.version_create(plugin=plugin, artifact=plugin_archive(plugin.name, number, **archive), actor=author)
    with capture(execute=True):
        sub.version_submit(version=version, actor=author)
    review.stage_pass(review=open_review(version, "eligibility"), actor=platform_admin)
    compliance = open_review(version, "compliance")
    return {a.control.key: a for a in ControlAssessment.objects.filter(stage_review=compliance)}


def test_pii_without_encryption_at_rest_is_not_met_then_met_when_corrected(
    plugin, author, pipeline, platform_admin, checklist, django_capture_on_commit_callbacks
):
    first = compliance_assessments(
        plugin,
        author,
        platform_admin,
        "1.0.0",
        django_capture_on_commit_callbacks,
        manifest=pii_manifest("1.0.0", at_rest=False),
    )
    at_rest = first["encryption-at-rest"]
    assert (at_rest.result, at_rest.status, at_rest.automatic) == ("not_met", "done", True)
    assert at_rest.inputs == {"data.encryption_at_rest": False}
    assert at_rest.reason == "data.encryption_at_rest == true is false"
    assert first["data-minimisation"].result == "pending"  # needs evidence: a person decides
    assert first["retention"].result == "met"

    corrected = compliance_assessments(
        plugin,
        author,
        platform_admin,
        "1.0.1",
        django_capture_on_commit_callbacks,
        manifest=pii_manifest("1.0.1", at_rest=True),
    )
    assert corrected["encryption-at-rest"].result == "met"
    assert corrected["encryption-at-rest"].inputs == {"data.encryption_at_rest": True}


def test_controls_for_pii_do_not_apply_to_plugins_without_it(
    plugin, author, pipeline, platform_admin, checklist, django_capture_on_commit_callbacks
):
    assessed = compliance_assessments(plugin, author, platform_admin, "1.0.0", django_capture_on_commit_callbacks)
    assert "encryption-at-rest" not in assessed and "encryption-in-transit" in assessed
    assert len(assessed) == 7


def test_import_is_versioned_and_round_trips(checklist):
    out = StringIO()
    call_command("import_framework", str(DEFAULT), stdout=out)
    assert "unchanged" in out.getvalue()
    exported = StringIO()
    call_command("export_framework", "data-handling", stdout=exported)
    document = yaml.safe_load(exported.getvalue())
    assert document == {**yaml.safe_load(DEFAULT.read_text()), "controls": document["controls"]}
    assert framework_import(document=document)[1] is False  # its own export changes nothing
    document["controls"][0]["text"] = "Changed wording."
    framework, created = framework_import(document=document)
    assert created and framework.version == 2
    assert Framework.objects.get(key="data-handling", version=1).controls.count() == 10


def test_an_expression_that_does_not_compile_is_refused_with_the_compilers_message():
    document = {"key": "bad", "name": "Bad", "controls": [{"key": "x", "text": "X", "expression": "data.("}]}
    with pytest.raises(ValidationFailed) as refusal:
        framework_import(document=document)
    assert refusal.value.errors[0]["field"] == "controls[0].expression"
    assert "CEL" in refusal.value.errors[0]["message"]
    assert not Framework.objects.filter(key="bad").exists()
    with pytest.raises(CommandError, match="No framework 'bad'"):
        call_command("export_framework", "bad", stdout=StringIO())


def test_the_compliance_review_page_lists_every_control(
    client, plugin, author, pipeline, platform_admin, compliance, checklist, django_capture_on_commit_callbacks
):
    from django.urls import reverse

    assessed = compliance_assessments(
        plugin,
        author,
        platform_admin,
        "1.0.0",
        django_capture_on_commit_callbacks,
        manifest=pii_manifest("1.0.0", at_rest=False),
    )
    stage_review = next(iter(assessed.values())).stage_review
    client.force_login(compliance)
    response = client.get(reverse("admin:reviews_stagereview_change", args=[stage_review.pk]))
    inline = next(f for f in response.context["inline_admin_formsets"] if f.opts.model is ControlAssessment)
    assert sorted(row.original.control.key for row in inline) == sorted(assessed)
    assert len(assessed) == 10
    assert "data.encryption_at_rest == true is false" in response.content.decode()


def test_frameworks_are_edited_in_the_admin_until_used_then_versioned(
    client, plugin, author, pipeline, platform_admin, compliance, checklist, django_capture_on_commit_callbacks
):
    from django.urls import reverse

    framework = Framework.objects.get(key="data-handling")
    client.force_login(compliance)
    url = reverse("admin:compliance_framework_changelist")
    copy_response = client.post(url, {"action": "new_version", "_selected_action": [framework.pk]}, follow=True)
    assert "Created Data handling and vendor risk v2" in copy_response.content.decode()
    draft = Framework.objects.get(key="data-handling", version=2)
    control = draft.controls.get(key="retention")
    change = reverse("admin:compliance_framework_change", args=[draft.pk])
    form = {
        "name": draft.name,
        "description": draft.description,
        "controls-TOTAL_FORMS": "1",
        "controls-INITIAL_FORMS": "1",
        "controls-MIN_NUM_FORMS": "0",
        "controls-MAX_NUM_FORMS": "1000",
        "controls-0-id": control.pk,
        "controls-0-framework": draft.pk,
        "controls-0-key": "retention",
        "controls-0-text": control.text,
        "controls-0-criticality": "medium",
        "controls-0-guidance": "",
        "controls-0-typical_evidence": "",
        "controls-0-applies_to_data": "[]",
        "controls-0-expression": "data.retention_days <= ",
    }
    refused = client.post(change, form)
    assert refused.status_code == 200 and "CEL" in refused.content.decode()
    form["controls-0-expression"] = "data.retention_days <= 180"
    assert client.post(change, form).status_code == 302
    assert draft.controls.get(key="retention").expression == "data.retention_days <= 180"

    compliance_assessments(plugin, author, platform_admin, "1.0.0", django_capture_on_commit_callbacks)  # uses v1
    page = client.get(reverse("admin:compliance_framework_change", args=[framework.pk])).content.decode()
    assert 'name="controls-0-expression"' not in page  # version 1 is in use: frozen
    assert client.post(reverse("admin:compliance_framework_change", args=[framework.pk]), form).status_code == 403
