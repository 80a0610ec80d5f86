"""bandit, GuardDog and the OSV match, end to end: archive in, findings on the version."""

import zipfile
from io import StringIO
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command

from reviews import services as review
from reviews.models import Advisory, CheckRun, RunStatus
from reviews.sandbox.runner import isolation_available
from submissions import services as sub
from submissions.samples import MANIFEST_TEMPLATE, plugin_archive
from tests.conftest import open_review, zipped

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@pytest.fixture
def reach_security(acme, author, full_pipeline, platform_admin, django_capture_on_commit_callbacks):
    """Upload, submit, pass eligibility: the security stage starts and its checks run."""

    def reach(name: str, upload: SimpleUploadedFile):
        plugin = sub.plugin_create(organisation=acme, name=name, category="data-connector", actor=author)
        version = sub.version_create(plugin=plugin, artifact=upload, actor=author)
        with django_capture_on_commit_callbacks(execute=True):
            sub.version_submit(version=version, actor=author)
        with django_capture_on_commit_callbacks(execute=True):
            review.stage_pass(review=open_review(version, "eligibility"), actor=platform_admin)
        return {
            run.check_key: run for run in CheckRun.objects.filter(version=version, check_key__startswith="security")
        }

    return reach


def test_bandit_finds_shell_and_yaml_load(reach_security):
    runs = reach_security("acme-shell", zipped(FIXTURES / "plugins" / "bandit-bad", "acme-shell"))
    bandit = runs["security.bandit"]
    assert bandit.status == RunStatus.FAILED and bandit.tool_version == "1.9.4"
    found = {f.rule_id: f for f in bandit.findings.all()}
    assert found["B602"].severity == "high" and found["B602"].cwe == "CWE-78"
    assert found["B602"].path == "acme_shell/plugin.py" and found["B602"].line
    assert "B506" in found
    assert bandit.report.read().startswith(b"{")


def test_guarddog_finds_base64_exec_and_undeclared_network(reach_security):
    runs = reach_security("acme-beacon", zipped(FIXTURES / "plugins" / "guarddog-bad", "acme-beacon"))
    guarddog = runs["security.guarddog"]
    assert guarddog.status == RunStatus.FAILED, guarddog.error
    rules = {(f.rule_id, f.title) for f in guarddog.findings.all()}
    assert ("undeclared-capability", "Undeclared capability: network") in rules
    assert any(rule == "threat-runtime-obfuscation-base64exec" for rule, _title in rules)
    undeclared = guarddog.findings.get(title="Undeclared capability: network")
    assert (undeclared.severity, undeclared.kind) == ("high", "capability")


@pytest.mark.skipif(not isolation_available(), reason="the behaviour check runs the plugin in bubblewrap (bwrap)")
def test_clean_plugin_has_no_security_findings(reach_security):
    runs = reach_security("csv-summary", zipped(FIXTURES / "plugins" / "clean", "csv-summary"))
    assert {key: run.status for key, run in runs.items()} == dict.fromkeys(runs, RunStatus.SUCCEEDED)
    assert not any(run.findings.exists() for run in runs.values())


def with_requirements(name: str, version: str, requirements: str) -> SimpleUploadedFile:
    manifest = MANIFEST_TEMPLATE.format(
        name=name, version=version, module=name.replace("-", "_"), category="data-connector"
    ).replace("requirements = []", requirements)
    return plugin_archive(name, version, manifest=manifest)


def test_vulnerable_pin_gets_the_advisory_and_the_fixed_pin_does_not(reach_security):
    call_command("import_advisories", str(FIXTURES / "osv"), stdout=StringIO())
    vulnerable = reach_security(
        "acme-http", with_requirements("acme-http", "1.0.0", 'requirements = ["requests==2.30.0"]')
    )
    findings = list(vulnerable["security.dependencies"].findings.all())
    assert len(findings) == 1  # the GHSA and the PYSEC of one CVE are one finding
    finding = findings[0]
    assert finding.kind == "dependency" and finding.severity == "medium"
    assert {finding.rule_id, *finding.data["aliases"]} >= {"GHSA-j8r2-6x86-q33q", "CVE-2023-32681"}
    assert finding.data["fixed"] == ["2.31.0"] and finding.data["affected"]

    fixed = reach_security(
        "acme-http2", with_requirements("acme-http2", "1.0.0", 'requirements = ["requests==2.31.0"]')
    )
    assert not fixed["security.dependencies"].findings.exists()


# -- importing advisories ----------------------------------------------------------------


def import_(*args) -> str:
    out = StringIO()
    call_command("import_advisories", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_import_is_idempotent_and_modified_decides():
    assert "6 new, 0 updated, 0 unchanged" in import_(str(FIXTURES / "osv"))
    assert "0 new, 0 updated, 6 unchanged" in import_(str(FIXTURES / "osv"))
    advisory = Advisory.objects.get(osv_id="GHSA-j8r2-6x86-q33q")
    assert advisory.aliases == ["CVE-2023-32681"]
    assert set(advisory.packages.values_list("ecosystem", "name")) == {("PyPI", "requests")}


def test_import_from_an_osv_zip_export(tmp_path):
    export = tmp_path / "all.zip"
    with zipfile.ZipFile(export, "w") as archive:
        for path in (FIXTURES / "osv" / "ghsa").glob("*.json"):
            archive.write(path, path.name)
    assert "2 new" in import_(str(export))


def test_dry_run_stores_nothing():
    assert "Would import: 6 new" in import_(str(FIXTURES / "osv"), "--dry-run")
    assert not Advisory.objects.exists()


def test_bad_entries_are_listed_and_the_rest_imported(tmp_path):
    (tmp_path / "good.json").write_bytes((FIXTURES / "osv" / "ghsa" / "GHSA-j8r2-6x86-q33q.json").read_bytes())
    (tmp_path / "bad.json").write_text('{"id": "X-1"}')
    with pytest.raises(CommandError, match="1 entries could not be read"):
        import_(str(tmp_path))
    assert list(Advisory.objects.values_list("osv_id", flat=True)) == ["GHSA-j8r2-6x86-q33q"]


def test_advisories_api(client, platform_admin, author):
    document = (FIXTURES / "osv" / "ghsa" / "GHSA-j8r2-6x86-q33q.json").read_text()
    client.force_login(author)
    assert client.post("/api/v1/advisories/", document, content_type="application/json").status_code == 403
    client.force_login(platform_admin)
    response = client.post("/api/v1/advisories/", document, content_type="application/json")
    assert response.json() == {"created": 1, "updated": 0, "unchanged": 0, "errors": []}
    response = client.post("/api/v1/advisories/", '[{"id": "broken"}]', content_type="application/json")
    assert response.status_code == 400 and response.json()["code"] == "invalid_advisories"
    response = client.post("/api/v1/advisories/", "{not json", content_type="application/json")
    assert response.status_code == 400 and response.json()["code"] == "parse_error"
    response = client.post("/api/v1/advisories/", "[" * 100_000 + "]" * 100_000, content_type="application/json")
    assert (response.status_code, response.json()["code"]) == (400, "parse_error")
    upload = SimpleUploadedFile("a.json", document.encode())
    assert client.post("/api/v1/advisories/", {"file": upload}).json()["unchanged"] == 1


def test_new_advisories_rematch_approved_versions(make_approved, django_capture_on_commit_callbacks):
    manifest = MANIFEST_TEMPLATE.format(
        name="acme-exporter", version="1.0.0", module="acme_exporter", category="data-connector"
    )
    approved = make_approved(
        "1.0.0", manifest=manifest.replace("requirements = []", 'requirements = ["requests==2.30.0"]')
    )
    with django_capture_on_commit_callbacks(execute=True):
        import_(str(FIXTURES / "osv"))
    rematch = CheckRun.objects.get(version=approved, check_key="security.dependencies", stage_review=None)
    assert rematch.status == RunStatus.SUCCEEDED  # the advisory is moderate: a finding, not a failure
    assert rematch.findings.get().data["package"] == "requests"
    with django_capture_on_commit_callbacks(execute=True):
        import_(str(FIXTURES / "osv"))  # nothing new: no second re-match
    assert CheckRun.objects.filter(version=approved, check_key="security.dependencies").count() == 1
