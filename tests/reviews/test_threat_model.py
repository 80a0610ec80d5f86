"""The threat model: prefilled from plugin.toml and the sandbox, filled in by the author,
accepted or sent back by the security reviewer; and the performance table in the admin."""

import pytest
from django.urls import reverse

from governance.errors import PermissionRefused, TransitionRefused, ValidationFailed
from reviews import threat_model as tm
from reviews.models import (
    CheckRun,
    ElementKind,
    Finding,
    PerformanceMetric,
    RunStatus,
    Source,
    Stride,
    Threat,
    ThreatModelStatus,
)
from reviews.services import stage_pass
from submissions import services as sub
from submissions.samples import MANIFEST_TEMPLATE, plugin_archive
from tests.conftest import last_audit, open_review

MANIFEST = (
    MANIFEST_TEMPLATE.format(name="acme-exporter", version="1.4.0", module="acme_exporter", category="data-connector")
    .replace("network = []", 'network = ["api.acme.example:443"]')
    .replace('categories = ["usage"]', 'categories = ["pii", "usage"]')
)


@pytest.fixture
def version(plugin, author, pipeline, platform_admin, django_capture_on_commit_callbacks):
    version = sub.version_create(
        plugin=plugin, artifact=plugin_archive(plugin.name, "1.4.0", manifest=MANIFEST), actor=author
    )
    with django_capture_on_commit_callbacks(execute=True):
        sub.version_submit(version=version, actor=author)
    with django_capture_on_commit_callbacks(execute=True):
        stage_pass(review=open_review(version, "eligibility"), actor=platform_admin)
    version.refresh_from_db()
    return version


def names(model, kind):
    return set(model.elements.filter(kind=kind).values_list("name", flat=True))


def test_prefill_turns_the_manifest_and_observed_behaviour_into_elements_and_threats(version, author):
    run = CheckRun.objects.create(version=version, check_key="security.behaviour", status=RunStatus.SUCCEEDED)
    Finding.objects.create(
        check_run=run, version=version, kind="behaviour", severity="high", rule_id="behaviour.undeclared-network",
        title="x", fingerprint="f" * 64, data={"target": "evil.example:80"},
    )  # fmt: skip

    model = tm.threat_model_prefill(version=version, actor=author)

    assert names(model, ElementKind.ASSET) == {"pii data", "usage data"}
    assert names(model, ElementKind.ENTRY_POINT) == {
        "Host API: acme_exporter.plugin:Plugin",
        "Network: api.acme.example:443",
        "Network: evil.example:80",
    }
    assert names(model, ElementKind.TRUST_BOUNDARY) == {
        "Host platform / plugin",
        "Plugin / remote services",
        "Plugin / host files",
    }
    assert model.elements.get(name="Network: evil.example:80").source == Source.BEHAVIOUR
    disclosure = Threat.objects.get(
        threat_model=model, title__contains="api.acme.example:443", stride=Stride.INFORMATION_DISCLOSURE
    )
    assert disclosure.mitigation == "TLS"
    assert last_audit(model).action == "threat_model.prefill"


def test_prefill_again_keeps_what_the_author_wrote(version, author):
    model = tm.threat_model_prefill(version=version, actor=author)
    element = model.elements.get(name="usage data")
    element.description = "Hourly usage counters, no identifiers."
    element.save()
    threats = model.threats.count()

    tm.threat_model_prefill(version=version, actor=author)

    element.refresh_from_db()
    assert element.description == "Hourly usage counters, no identifiers."
    assert model.threats.count() == threats


def test_the_author_submits_and_the_security_reviewer_accepts(version, author, security):
    model = tm.threat_model_prefill(version=version, actor=author)

    tm.threat_model_submit(threat_model=model, actor=author)
    with pytest.raises(PermissionRefused):
        tm.threat_model_decide(threat_model=model, actor=author, accept=True)
    tm.threat_model_decide(threat_model=model, actor=security, accept=True, reason="Covers the export path.")

    model.refresh_from_db()
    assert model.status == ThreatModelStatus.ACCEPTED
    assert model.reviewed_by == security and model.review_note == "Covers the export path."
    assert last_audit(model).action == "threat_model.accept"
    with pytest.raises(TransitionRefused):
        tm.threat_model_prefill(version=version, actor=author)


def test_changes_need_a_reason_and_reopen_editing(version, author, security):
    model = tm.threat_model_prefill(version=version, actor=author)
    tm.threat_model_submit(threat_model=model, actor=author)

    with pytest.raises(ValidationFailed):
        tm.threat_model_decide(threat_model=model, actor=security, accept=False, reason=" ")
    tm.threat_model_decide(threat_model=model, actor=security, accept=False, reason="Add the token store as an asset.")

    model.refresh_from_db()
    assert model.status == ThreatModelStatus.CHANGES_REQUESTED
    tm.threat_model_edit(threat_model=model, actor=author, changed=["summary"])


def test_an_empty_threat_model_is_not_submitted_and_outsiders_are_refused(version, author, outsider, other_author):
    model = tm.threat_model_prefill(version=version, actor=author)
    model.threats.all().delete()

    with pytest.raises(TransitionRefused, match="at least one threat"):
        tm.threat_model_submit(threat_model=model, actor=author)
    for stranger in (outsider, other_author):
        with pytest.raises(PermissionRefused):
            tm.threat_model_prefill(version=version, actor=stranger)
        with pytest.raises(PermissionRefused):
            tm.threat_model_submit(threat_model=model, actor=stranger)
    model.refresh_from_db()
    assert model.status == ThreatModelStatus.DRAFT


def test_the_author_edits_rows_in_the_admin_and_others_see_nothing(client, version, author, other_author):
    model = tm.threat_model_prefill(version=version, actor=author)
    url = reverse("admin:reviews_threatmodel_change", args=[model.pk])

    client.force_login(author)
    page = client.get(url)
    assert page.status_code == 200
    assert b"Prefill from plugin.toml" in page.content and b"api.acme.example:443" in page.content

    client.force_login(other_author)
    assert client.get(url).status_code in (302, 404)


def test_the_performance_stage_page_shows_kpi_budget_this_previous_and_change(
    client, version, make_approved, platform_admin, performance
):
    previous = make_approved("1.0.0")
    run = CheckRun.objects.create(
        version=version, check_key="performance.harness", status=RunStatus.FAILED, finished_at=version.created_at,
        summary={"baseline": "1.0.0 (last approved)", "budget": "resource limits of Host"},
    )  # fmt: skip
    PerformanceMetric.objects.create(
        check_run=run, version=version, kpi="startup_ms", value=312.5, unit="ms", budget=250, within_budget=False,
        baseline_version=previous, baseline_value=208.0, change_percent=50.2, regressed=True,
    )  # fmt: skip
    review = open_review(version, "performance")

    client.force_login(performance)
    page = client.get(reverse("admin:reviews_stagereview_change", args=[review.pk])).content.decode()

    row = page[page.index("<td>Cold startup</td>") :].split("</tr>")[0]
    assert "≤ 250 ms" in row and "312.5 ms" in row and "208 ms" in row and "+50.2 % (50.2 % worse)" in row
    assert "over budget" in row and "regressed" in row
    assert "1.0.0 (last approved), measured in the same run" in page
    assert '<table class="warden-audit">' in page  # the audit trail below, as HTML


def test_other_stage_pages_show_the_audit_trail_as_html_and_no_performance_table(client, version, security):
    review = open_review(version, "security")
    client.force_login(security)

    page = client.get(reverse("admin:reviews_stagereview_change", args=[review.pk])).content.decode()

    assert '<table class="warden-audit">' in page
    assert "warden-performance" not in page


def test_budgets_are_edited_by_platform_admins_and_metrics_are_scoped(
    client, version, platform_admin, performance, outsider, django_assert_max_num_queries
):
    from governance.models import HostPlatform
    from reviews.models import PerformanceBudget

    host = HostPlatform.objects.create(name="Host", api_version="2.4", is_default=True)
    client.force_login(platform_admin)
    response = client.post(
        reverse("admin:reviews_performancebudget_add"),
        {"host_platform": host.pk, "category": "data-connector", "startup_ms": "250", "regression_percent": "15",
         "typical_threads": "4", "peak_threads": "16"},
    )  # fmt: skip
    assert response.status_code == 302
    budget = PerformanceBudget.objects.get()
    assert (budget.startup_ms, budget.regression_percent) == (250, 15)
    assert budget.history.get().history_user == platform_admin

    run = CheckRun.objects.create(version=version, check_key="performance.harness", status=RunStatus.SUCCEEDED)
    for kpi in ("startup_ms", "cpu_ms", "peak_rss_mb"):
        PerformanceMetric.objects.create(check_run=run, version=version, kpi=kpi, value=1, unit="ms")
    client.force_login(performance)
    with django_assert_max_num_queries(12):
        page = client.get(reverse("admin:reviews_performancemetric_changelist"))
    assert page.status_code == 200 and page.content.count(b"startup_ms") >= 1
    assert client.get(reverse("admin:reviews_performancebudget_add")).status_code == 403
    client.force_login(outsider)
    assert client.get(reverse("admin:reviews_performancemetric_changelist")).status_code == 403
