"""Report importers (reviews/importers): real reports in, plain findings out; anything wrong with a
report is a ReportError naming the place. No database.

Every input here is a real report from tests/fixtures/reports/ (see its README), or one with a
single, named change made to it in the test, so the importers are tested against what tools
actually write rather than against what we remember of the formats.
"""

import copy
import json
import random
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from reviews.findings_data import SEVERITIES, FindingData
from reviews.importers import (
    DEFAULT_MAX_BYTES,
    ParsedReport,
    ReportError,
    VexStatement,
    apply_vex,
    parse_report,
)

REPORTS = Path(__file__).resolve().parents[1] / "fixtures" / "reports"
BOM_EXAMPLES = REPORTS / "cyclonedx-bom-examples"

# (format, fixture) for every real report that parses
GOOD = [
    ("sarif", REPORTS / "bandit.sarif"),
    ("sarif", REPORTS / "cifuzz.sarif"),
    ("cyclonedx", REPORTS / "cyclonedx-env-1.5.json"),
    ("cyclonedx", REPORTS / "cyclonedx-env-1.6.json"),
    ("cyclonedx", BOM_EXAMPLES / "vex.json"),
    ("cyclonedx", BOM_EXAMPLES / "use-case-5-vex.json"),
    ("cyclonedx", BOM_EXAMPLES / "cisa-case-1-vex-fixed.json"),
    ("cyclonedx", BOM_EXAMPLES / "cisa-case-1-vex-under_investigation.json"),
    ("pip-audit", REPORTS / "pip-audit-requests.json"),
    ("pip-audit", REPORTS / "pip-audit-offline.json"),
]
SAFETY_NET = "unexpected shape"  # parse_report's catch-all: the fuzz tests require it never fires


def raw(path: Path) -> bytes:
    return path.read_bytes()


def doc(path: Path) -> dict:
    return json.loads(path.read_bytes())


def edited(path: Path, change: Callable[[dict], object]) -> bytes:
    """A real report with one change made to it."""
    document = doc(path)
    change(document)
    return json.dumps(document).encode()


def by_rule(report: ParsedReport) -> dict[str, FindingData]:
    return {finding.rule_id: finding for finding in report.findings}


def bandit_results(document: dict) -> list[dict]:
    return document["runs"][0]["results"]


def bandit_result(document: dict, rule_id: str) -> dict:
    return next(result for result in bandit_results(document) if result["ruleId"] == rule_id)


def unanalysed(document: dict) -> None:
    """The first vulnerability of a VEX example without its analysis: a plain vulnerability."""
    del document["vulnerabilities"][0]["analysis"]


# --- SARIF: bandit 1.9.4 -------------------------------------------------------------------------


def test_bandit_sarif_findings():
    report = parse_report("sarif", raw(REPORTS / "bandit.sarif"))

    assert (report.format, report.tool, report.tool_version) == ("sarif", "Bandit", "1.9.4")
    assert (report.components, report.vex) == ([], [])
    found = by_rule(report)
    assert sorted(found) == ["B105", "B301", "B324", "B403", "B404", "B506", "B602"]
    expected = {  # rule: (severity, path, line, cwe)
        "B602": ("high", "vulnpkg/runner.py", 5, "CWE-78"),
        "B404": ("low", "vulnpkg/runner.py", 1, "CWE-78"),
        "B324": ("high", "vulnpkg/config.py", 18, "CWE-327"),
        "B506": ("medium", "vulnpkg/config.py", 10, "CWE-20"),
        "B301": ("medium", "vulnpkg/config.py", 14, "CWE-502"),
        "B403": ("low", "vulnpkg/config.py", 2, "CWE-502"),
        "B105": ("low", "vulnpkg/config.py", 6, "CWE-259"),
    }
    assert {rule: (f.severity, f.path, f.line, f.cwe) for rule, f in found.items()} == expected
    b602 = found["B602"]
    assert b602.kind == "security"
    assert b602.tool == "Bandit"
    assert b602.snippet == "    return subprocess.call(cmd, shell=True)\n"
    assert b602.message == b602.title == "subprocess call with shell=True identified, security issue."
    assert b602.data["confidence"] == "high"
    assert b602.data["level"] == "error"
    assert b602.data["rule_name"] == "subprocess_popen_with_shell_equals_true"
    assert b602.data["help_uri"].endswith("b602_subprocess_popen_with_shell_equals_true.html")
    assert found["B105"].data["confidence"] == "medium"
    assert found["B105"].snippet == 'password = "hunter2"\n'
    assert report.summary["by_severity"] == {"critical": 0, "high": 2, "medium": 2, "low": 3, "info": 0}
    assert report.summary["findings"] == 7
    assert report.summary["tools"] == ["Bandit"]
    assert report.summary["execution_successful"] is True


def test_bandit_results_without_a_level_are_sarif_warnings():
    """bandit leaves out ``level`` when it would be SARIF's default, "warning" (B506, B301)."""
    document = doc(REPORTS / "bandit.sarif")
    assert "level" not in bandit_result(document, "B506")

    found = by_rule(parse_report("sarif", raw(REPORTS / "bandit.sarif")))

    assert found["B506"].data["level"] == "warning"
    assert found["B301"].data["level"] == "warning"


def without_properties(document: dict) -> None:
    for result in bandit_results(document):
        del result["properties"]


def test_without_bandit_properties_severity_comes_from_the_level():
    found = by_rule(parse_report("sarif", edited(REPORTS / "bandit.sarif", without_properties)))

    assert {rule: finding.severity for rule, finding in found.items()} == {
        "B602": "high",  # error
        "B324": "high",  # error
        "B506": "medium",  # no level: warning
        "B301": "medium",  # no level: warning
        "B403": "low",  # note
        "B404": "low",  # note
        "B105": "low",  # note
    }
    assert "confidence" not in found["B602"].data


def test_bandit_issue_severity_wins_over_the_level():
    def low_but_error(document: dict) -> None:
        bandit_result(document, "B403")["level"] = "error"  # issue_severity stays LOW

    assert by_rule(parse_report("sarif", edited(REPORTS / "bandit.sarif", low_but_error)))["B403"].severity == "low"


def test_absent_level_falls_back_to_the_rules_default_configuration():
    def default_error(document: dict) -> None:
        without_properties(document)
        rules = document["runs"][0]["tool"]["driver"]["rules"]
        next(rule for rule in rules if rule["id"] == "B506")["defaultConfiguration"] = {"level": "error"}

    found = by_rule(parse_report("sarif", edited(REPORTS / "bandit.sarif", default_error)))

    assert found["B506"].severity == "high"
    assert found["B506"].data["level"] == "error"
    assert found["B301"].severity == "medium"  # its rule has no defaultConfiguration


def test_rule_found_by_rule_index_when_rule_id_is_absent():
    def index_only(document: dict) -> None:
        for result in bandit_results(document):
            del result["ruleId"]

    found = by_rule(parse_report("sarif", edited(REPORTS / "bandit.sarif", index_only)))

    assert sorted(found) == ["B105", "B301", "B324", "B403", "B404", "B506", "B602"]
    assert found["B602"].cwe == "CWE-78"


@pytest.mark.parametrize(
    ("uri", "bases", "path"),
    [
        ("vulnpkg/runner.py", None, "vulnpkg/runner.py"),
        ("./vulnpkg/runner.py", None, "vulnpkg/runner.py"),
        ("vulnpkg\\runner.py", None, "vulnpkg/runner.py"),
        (
            "file:///home/ci/build/vulnpkg/runner.py",
            {"SRCROOT": {"uri": "file:///home/ci/build/"}},
            "vulnpkg/runner.py",
        ),
        ("file:///home/ci/build/vulnpkg/runner.py", {"SRCROOT": {"uri": "file:///home/ci/build"}}, "vulnpkg/runner.py"),
        ("file:///home/ci/other/runner.py", None, "home/ci/other/runner.py"),
        ("file:///C:/work/my%20plugin/runner.py", {"SRCROOT": {"uri": "file:///C:/work/"}}, "my plugin/runner.py"),
        ("file:///C:/work/runner.py", None, "work/runner.py"),
        ("file://localhost/srv/x/runner.py", {"ROOT": {"uri": "file:///srv/x/"}}, "runner.py"),
    ],
)
def test_artifact_uris_become_relative_forward_slash_paths(uri, bases, path):
    def relocate(document: dict) -> None:
        bandit_result(document, "B602")["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] = uri
        if bases:
            document["runs"][0]["originalUriBaseIds"] = bases

    assert by_rule(parse_report("sarif", edited(REPORTS / "bandit.sarif", relocate)))["B602"].path == path


def test_artifact_location_by_index():
    def by_index(document: dict) -> None:
        document["runs"][0]["artifacts"] = [{"location": {"uri": "file:///ci/vulnpkg/runner.py"}}]
        document["runs"][0]["originalUriBaseIds"] = {"SRCROOT": {"uri": "file:///ci/"}}
        bandit_result(document, "B602")["locations"][0]["physicalLocation"]["artifactLocation"] = {"index": 0}

    assert (
        by_rule(parse_report("sarif", edited(REPORTS / "bandit.sarif", by_index)))["B602"].path == "vulnpkg/runner.py"
    )


def test_suppressed_results_are_kept_and_marked():
    def suppress(document: dict) -> None:
        bandit_result(document, "B105")["suppressions"] = [{"kind": "inSource"}]
        bandit_result(document, "B404")["suppressions"] = [{"kind": "external", "status": "rejected"}]

    report = parse_report("sarif", edited(REPORTS / "bandit.sarif", suppress))

    found = by_rule(report)
    assert found["B105"].data["suppressed"] is True
    assert found["B105"].triage == ""  # the author's own suppression is not a verdict
    assert "suppressed" not in found["B404"].data
    assert report.summary["suppressed"] == 1


def test_passing_results_are_counted_not_kept():
    def passed(document: dict) -> None:
        bandit_result(document, "B404")["kind"] = "pass"
        del bandit_result(document, "B404")["level"]

    report = parse_report("sarif", edited(REPORTS / "bandit.sarif", passed))

    assert "B404" not in by_rule(report)
    assert report.summary["skipped_results"] == 1


def test_failed_execution_is_reported_in_the_summary():
    def failed(document: dict) -> None:
        document["runs"][0]["invocations"][0]["executionSuccessful"] = False

    assert parse_report("sarif", edited(REPORTS / "bandit.sarif", failed)).summary["execution_successful"] is False


# --- SARIF without bandit properties: cifuzz ----------------------------------------------------


def test_cifuzz_sarif_uses_the_rules_security_severity():
    report = parse_report("sarif", raw(REPORTS / "cifuzz.sarif"))

    assert (report.tool, report.tool_version) == ("cifuzz", "")
    [finding] = report.findings
    assert finding.rule_id == "heap_buffer_overflow"
    assert finding.title == "Heap Buffer Overflow"  # the rule's shortDescription
    assert finding.severity == "critical"  # security-severity 9.0 on the rule; the level is the default warning
    assert finding.data["level"] == "warning"
    assert finding.data["security_severity"] == "9.0"
    assert (finding.path, finding.line, finding.snippet) == ("src/explore_me.cpp", 18, "")
    assert finding.kind == "security"
    assert finding.message.startswith('Heap Buffer Overflow "philosophical_panther" found in src/explore_me.cpp:18:11')
    assert finding.cwe == ""


@pytest.mark.parametrize(
    ("score", "severity"),
    [
        ("9.0", "critical"),
        (10, "critical"),
        ("7.5", "high"),
        (7, "high"),
        ("4.0", "medium"),
        (6.9, "medium"),
        ("3.9", "low"),
        ("0.1", "low"),
        (0, "info"),
        ("0.0", "info"),
    ],
)
def test_security_severity_on_the_result_wins_over_the_rules(score, severity):
    def rescore(document: dict) -> None:
        document["runs"][0]["results"][0]["properties"] = {"security-severity": score}

    [finding] = parse_report("sarif", edited(REPORTS / "cifuzz.sarif", rescore)).findings

    assert finding.severity == severity
    assert finding.data["security_severity"] == score


def test_cwe_from_rule_relationships_and_result_taxa():
    def cwe_taxonomy(document: dict) -> None:
        rule = document["runs"][0]["tool"]["driver"]["rules"][0]
        rule["relationships"] = [{"target": {"id": "122", "toolComponent": {"name": "CWE"}}, "kinds": ["superset"]}]

    [finding] = parse_report("sarif", edited(REPORTS / "cifuzz.sarif", cwe_taxonomy)).findings
    assert finding.cwe == "CWE-122"

    def result_taxa(document: dict) -> None:
        cwe_taxonomy(document)
        document["runs"][0]["results"][0]["taxa"] = [{"id": "787", "toolComponent": {"name": "CWE"}}]

    [finding] = parse_report("sarif", edited(REPORTS / "cifuzz.sarif", result_taxa)).findings
    assert finding.cwe == "CWE-787"


@pytest.mark.parametrize(
    ("tag", "cwe"),
    [
        ("external/cwe/cwe-78", "CWE-78"),  # bandit, CodeQL
        ("external/cwe/cwe-020", "CWE-20"),  # CodeQL pads
        ("CWE-502: Deserialization of Untrusted Data", "CWE-502"),  # semgrep
        ("security/cwe/cwe-94", "CWE-94"),
        ("OWASP-A8: Insecure Deserialization", ""),
    ],
)
def test_cwe_from_rule_tags(tag, cwe):
    def tagged(document: dict) -> None:
        rule = document["runs"][0]["tool"]["driver"]["rules"][0]
        rule["properties"] = {"tags": [tag]}

    [finding] = parse_report("sarif", edited(REPORTS / "cifuzz.sarif", tagged)).findings

    assert finding.cwe == cwe


def test_message_by_id_from_the_rules_message_strings():
    def templated(document: dict) -> None:
        document["runs"][0]["tool"]["driver"]["rules"][0]["messageStrings"] = {"crash": {"text": "Overflow in {0}"}}
        document["runs"][0]["results"][0]["message"] = {"id": "crash", "arguments": ["exploreMe"]}

    [finding] = parse_report("sarif", edited(REPORTS / "cifuzz.sarif", templated)).findings

    assert finding.message == "Overflow in exploreMe"


def test_a_result_without_rule_metadata_is_a_quality_finding_titled_by_its_message():
    def no_rules(document: dict) -> None:
        del document["runs"][0]["tool"]["driver"]["rules"]

    [finding] = parse_report("sarif", edited(REPORTS / "cifuzz.sarif", no_rules)).findings

    assert finding.rule_id == "heap_buffer_overflow"
    assert finding.title == 'Heap Buffer Overflow "philosophical_panther" found in src/explore_me.cpp:18:11'
    assert (finding.severity, finding.kind) == ("medium", "quality")


# --- CycloneDX ----------------------------------------------------------------------------------


def test_environment_sbom_components():
    report = parse_report("cyclonedx", raw(REPORTS / "cyclonedx-env-1.5.json"))

    assert (report.format, report.tool, report.tool_version) == ("cyclonedx", "cyclonedx-py", "7.5.0")
    assert (report.findings, report.vex) == ([], [])
    assert len(report.components) == 23
    assert {component.ecosystem for component in report.components} == {"PyPI"}
    by_name = {component.name: component for component in report.components}
    assert by_name["bandit"].version == "1.9.4"
    assert by_name["bandit"].purl == "pkg:pypi/bandit@1.9.4"
    assert by_name["PyYAML"].purl == "pkg:pypi/pyyaml@6.0.4"
    assert by_name["requests"].bom_ref == "requests==2.34.2"
    assert by_name["requests"].type == "library"
    assert report.summary["components"] == 23
    assert report.summary["ecosystems"] == {"PyPI": 23}
    assert report.summary["spec_version"] == "1.5"


def test_spec_1_6_sbom_and_its_tools_object():
    report = parse_report("cyclonedx", raw(REPORTS / "cyclonedx-env-1.6.json"))

    assert (report.tool, report.tool_version) == ("cyclonedx-py", "7.5.0")
    assert sorted(c.name for c in report.components) == [
        "certifi",
        "chardet",
        "charset-normalizer",
        "idna",
        "requests",
        "urllib3",
    ]


def test_nested_components_are_included():
    def nest(document: dict) -> None:
        urllib3 = next(c for c in document["components"] if c["name"] == "urllib3")
        document["components"].remove(urllib3)
        next(c for c in document["components"] if c["name"] == "requests")["components"] = [urllib3]

    report = parse_report("cyclonedx", edited(REPORTS / "cyclonedx-env-1.5.json", nest))

    names = [component.name for component in report.components]
    assert len(names) == 23
    assert names.index("urllib3") == names.index("requests") + 1
    assert next(c for c in report.components if c.name == "urllib3").purl.startswith("pkg:pypi/urllib3@")


def test_the_product_itself_is_not_a_component():
    report = parse_report("cyclonedx", raw(BOM_EXAMPLES / "cisa-case-1-vex-fixed.json"))

    assert report.components == []  # metadata.component (product DEF) is the subject, not a dependency


def test_vex_not_affected_with_a_bom_link():
    report = parse_report("cyclonedx", raw(BOM_EXAMPLES / "vex.json"))

    assert report.findings == []
    assert report.tool == "cyclonedx"  # the example names no tool
    [statement] = report.vex
    assert statement == VexStatement(
        vulnerability_id="CVE-2020-25649",
        triage="false_positive",
        state="not_affected",
        justification="code_not_reachable",
        detail=(
            "Automated dataflow analysis and manual code review indicates that the vulnerable code is not "
            "reachable, either directly or indirectly."
        ),
        response=("will_not_fix",),  # a bare string in the example; the schema says array
        refs=(
            "urn:cdx:3e671687-395b-41f5-a30f-a58921a69b79/1#"
            "pkg:maven/com.fasterxml.jackson.core/jackson-databind@2.10.0?type=jar",
        ),
        purls=("pkg:maven/com.fasterxml.jackson.core/jackson-databind@2.10.0?type=jar",),
        aliases=("SNYK-JAVA-COMFASTERXMLJACKSONCORE-1048302",),
    )
    assert statement.reason.startswith("VEX not_affected: code_not_reachable: Automated dataflow analysis")
    assert report.summary["vex_by_triage"] == {"false_positive": 1}


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [
        (
            "use-case-5-vex.json",
            [("exploitable", "open", ""), ("not_affected", "false_positive", "code_not_reachable")],
        ),
        ("cisa-case-1-vex-fixed.json", [("resolved", "fixed", "")]),
        ("cisa-case-1-vex-under_investigation.json", [("in_triage", "open", "")]),
    ],
)
def test_vex_states_map_to_triage(fixture, expected):
    report = parse_report("cyclonedx", raw(BOM_EXAMPLES / fixture))

    assert [(s.state, s.triage, s.justification) for s in report.vex] == expected
    assert all(s.purls == () for s in report.vex)  # the refs name the product, which has no purl
    assert report.findings == []


@pytest.mark.parametrize(
    ("state", "triage"),
    [
        ("not_affected", "false_positive"),
        ("false_positive", "false_positive"),
        ("resolved", "fixed"),
        ("resolved_with_pedigree", "fixed"),
        ("exploitable", "open"),
        ("in_triage", "open"),
    ],
)
def test_every_analysis_state_maps(state, triage):
    def restate(document: dict) -> None:
        document["vulnerabilities"][0]["analysis"]["state"] = state

    [statement] = parse_report("cyclonedx", edited(BOM_EXAMPLES / "vex.json", restate)).vex

    assert (statement.state, statement.triage) == (state, triage)


def test_a_vulnerability_without_analysis_is_a_dependency_finding():
    report = parse_report("cyclonedx", edited(BOM_EXAMPLES / "vex.json", unanalysed))

    assert report.vex == []
    [finding] = report.findings
    assert finding.rule_id == "CVE-2020-25649"
    assert finding.kind == "dependency"
    assert finding.severity == "high"  # ratings: high (NVD), high (SNYK), none (Acme)
    assert finding.cwe == "CWE-611"
    assert finding.message.startswith("com.fasterxml.jackson.core:jackson-databind is a library")
    assert finding.title == ("CVE-2020-25649 in pkg:maven/com.fasterxml.jackson.core/jackson-databind@2.10.0?type=jar")
    assert finding.data["purls"] == ["pkg:maven/com.fasterxml.jackson.core/jackson-databind@2.10.0?type=jar"]
    assert finding.data["aliases"] == ["SNYK-JAVA-COMFASTERXMLJACKSONCORE-1048302"]
    assert finding.data["source"] == "NVD"
    assert finding.data["recommendation"].startswith("Upgrade com.fasterxml.jackson.core:jackson-databind")


@pytest.mark.parametrize(
    ("ratings", "severity"),
    [
        (None, "medium"),
        ([], "medium"),
        ([{"severity": "none"}], "medium"),
        ([{"severity": "low"}, {"severity": "critical"}], "critical"),
        ([{"score": 9.8, "method": "CVSSv31"}], "critical"),
        ([{"severity": "info"}], "info"),
    ],
)
def test_dependency_finding_severity_is_the_highest_rating(ratings, severity):
    def rerate(document: dict) -> None:
        del document["vulnerabilities"][0]["analysis"]
        document["vulnerabilities"][0]["ratings"] = ratings

    [finding] = parse_report("cyclonedx", edited(BOM_EXAMPLES / "vex.json", rerate)).findings

    assert finding.severity == severity


# --- pip-audit ----------------------------------------------------------------------------------


def test_pip_audit_findings():
    report = parse_report("pip-audit", raw(REPORTS / "pip-audit-requests.json"))

    assert (report.format, report.tool, report.tool_version) == ("pip-audit", "pip-audit", "")
    found = by_rule(report)
    assert sorted(found) == ["CVE-2024-47081", "CVE-2026-25645"]
    netrc = found["CVE-2024-47081"]
    assert netrc.kind == "dependency"
    assert netrc.severity == "medium"
    assert netrc.title == "CVE-2024-47081 in requests 2.32.3 (fixed in 2.32.4)"
    assert netrc.message.startswith("### Impact  Due to a URL parsing issue, Requests releases prior to 2.32.4")
    assert netrc.data == {
        "package": "requests",
        "version": "2.32.3",
        "purl": "pkg:pypi/requests@2.32.3",
        "aliases": ["GHSA-9hjg-9r4m-mvj7"],
        "fix_versions": ["2.32.4"],
    }
    assert found["CVE-2026-25645"].data["aliases"] == ["GHSA-gc5v-m9x4-r6x2"]
    assert (netrc.path, netrc.line, netrc.cwe) == ("", None, "")
    assert report.summary["dependencies"] == report.summary["audited"] == 5
    assert report.summary["vulnerable_packages"] == 1
    assert report.summary["by_severity"]["medium"] == 2


def test_pip_audit_that_could_not_reach_its_service_audited_nothing():
    """Produced here, offline: every dependency was skipped. That is no finding, and not clean."""
    report = parse_report("pip-audit", raw(REPORTS / "pip-audit-offline.json"))

    assert report.findings == []
    assert report.summary["audited"] == 0
    assert report.summary["dependencies"] == 8
    assert report.summary["skipped"][0] == {
        "name": "certifi",
        "reason": "Dependency not found on PyPI and could not be audited: certifi (2026.10.19.post1)",
    }


def test_pip_audit_vulnerability_without_aliases_or_description():
    def bare(document: dict) -> None:
        for vuln in document["dependencies"][0]["vulns"]:
            del vuln["aliases"], vuln["description"]

    found = by_rule(parse_report("pip-audit", edited(REPORTS / "pip-audit-requests.json", bare)))

    assert found["CVE-2024-47081"].data["aliases"] == []
    assert found["CVE-2024-47081"].message == ""


# --- VEX applied to findings from another report ------------------------------------------------


def vex_about(vulnerability_id: str, ref: str, state: str = "not_affected") -> list[VexStatement]:
    def retarget(document: dict) -> None:
        vulnerability = document["vulnerabilities"][0]
        vulnerability["id"] = vulnerability_id
        vulnerability["affects"] = [{"ref": ref}]
        vulnerability["analysis"]["state"] = state
        del vulnerability["references"]

    return parse_report("cyclonedx", edited(BOM_EXAMPLES / "vex.json", retarget)).vex


def test_apply_vex_triages_the_matching_finding_by_alias_and_package():
    findings = parse_report("pip-audit", raw(REPORTS / "pip-audit-requests.json")).findings
    statements = vex_about("GHSA-9hjg-9r4m-mvj7", "pkg:pypi/requests@2.32.3")

    triaged = by_rule(ParsedReport("pip-audit", "pip-audit", findings=apply_vex(findings, statements)))

    assert triaged["CVE-2024-47081"].triage == "false_positive"
    assert triaged["CVE-2024-47081"].triage_reason.startswith("VEX not_affected: code_not_reachable: Automated")
    assert triaged["CVE-2026-25645"].triage == ""
    assert (
        triaged["CVE-2024-47081"].fingerprint
        == by_rule(ParsedReport("", "", findings=findings))["CVE-2024-47081"].fingerprint
    )


@pytest.mark.parametrize(
    ("ref", "applies"),
    [
        ("pkg:pypi/requests@2.32.3", True),
        ("pkg:pypi/Requests", True),  # no version: every version; PyPI names are case-insensitive
        ("pkg:pypi/requests@2.31.0", False),  # another version
        ("pkg:pypi/urllib3@2.7.0", False),  # another package
        ("acme-product", True),  # the product as a whole
    ],
)
def test_apply_vex_package_matching(ref, applies):
    findings = parse_report("pip-audit", raw(REPORTS / "pip-audit-requests.json")).findings

    triaged = by_rule(ParsedReport("", "", findings=apply_vex(findings, vex_about("CVE-2024-47081", ref, "resolved"))))

    assert (triaged["CVE-2024-47081"].triage == "fixed") is applies


# --- what is wrong with a report ----------------------------------------------------------------


def sarif_edit(change: Callable[[dict], object]) -> Callable[[], bytes]:
    return lambda: edited(REPORTS / "bandit.sarif", change)


def bom_edit(change: Callable[[dict], object], path: Path = REPORTS / "cyclonedx-env-1.5.json") -> Callable[[], bytes]:
    return lambda: edited(path, change)


def audit_edit(change: Callable[[dict], object]) -> Callable[[], bytes]:
    return lambda: edited(REPORTS / "pip-audit-requests.json", change)


def steps(*changes: Callable[[dict], object]) -> Callable[[dict], None]:
    """Several changes to one report, in order."""

    def change(document: dict) -> None:
        for one in changes:
            one(document)

    return change


def results(document: dict) -> list:
    return document["runs"][0]["results"]


def first_vuln(document: dict) -> dict:
    return document["dependencies"][0]["vulns"][0]


MALFORMED = {
    # any format
    "empty": ("sarif", lambda: b"", "report is empty"),
    "blank": ("pip-audit", lambda: b" \n\t\n", "report is empty"),
    "missing comma": (
        "sarif",
        lambda: raw(REPORTS / "bandit.sarif").replace(b'"Bandit",', b'"Bandit"', 1),
        "not JSON: Expecting ',' delimiter at line 7 column 11",
    ),
    "truncated": ("cyclonedx", lambda: raw(REPORTS / "cyclonedx-env-1.6.json")[:-40], "not JSON: "),
    "latin-1": ("sarif", lambda: raw(REPORTS / "bandit.sarif").replace(b"hunter2", b"h\xfcnter2"), "not valid utf-8"),
    "NaN": ("sarif", lambda: raw(REPORTS / "cifuzz.sarif").replace(b'"9.0"', b"NaN"), "NaN is not a JSON value"),
    "nested too deep": ("cyclonedx", lambda: b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    "top-level array": ("sarif", lambda: b"[]", "the report must be a JSON object, not an array"),
    "top-level string": ("cyclonedx", lambda: b'"CycloneDX"', "the report must be a JSON object, not a string"),
    "top-level null": ("sarif", lambda: b"null", "the report must be a JSON object, not null"),
    "pip-audit array": ("pip-audit", lambda: b"[]", "must be an object with a 'dependencies' array"),
    # wrong format
    "bom as sarif": (
        "sarif",
        lambda: raw(REPORTS / "cyclonedx-env-1.5.json"),
        "this is a CycloneDX document, not SARIF",
    ),
    "sarif as bom": ("cyclonedx", lambda: raw(REPORTS / "bandit.sarif"), "this is a SARIF document, not CycloneDX"),
    "audit as sarif": (
        "sarif",
        lambda: raw(REPORTS / "pip-audit-requests.json"),
        "this is a pip-audit JSON document, not SARIF",
    ),
    "bom as audit": (
        "pip-audit",
        lambda: raw(REPORTS / "cyclonedx-env-1.6.json"),
        "this is a CycloneDX document, not pip-audit JSON",
    ),
    # SARIF
    "sarif level": (
        "sarif",
        sarif_edit(lambda d: results(d)[5].update(level="severe")),
        "runs[0].results[5].level: 'severe' is not a SARIF level",
    ),
    "sarif version": ("sarif", sarif_edit(lambda d: d.update(version="2.0.0")), "version '2.0.0' is not supported"),
    "sarif no version": ("sarif", sarif_edit(lambda d: d.pop("version")), "version is missing"),
    "sarif runs object": ("sarif", sarif_edit(lambda d: d.update(runs={})), "runs must be an array, not an object"),
    "sarif no runs": ("sarif", sarif_edit(lambda d: d.update(runs=[])), "runs is empty"),
    "sarif no results": ("sarif", sarif_edit(lambda d: d["runs"][0].pop("results")), "runs[0].results is missing"),
    "sarif no driver name": (
        "sarif",
        sarif_edit(lambda d: d["runs"][0]["tool"]["driver"].pop("name")),
        "runs[0].tool.driver.name must be a non-empty string",
    ),
    "sarif rule without id": (
        "sarif",
        sarif_edit(lambda d: d["runs"][0]["tool"]["driver"]["rules"][2].pop("id")),
        "runs[0].tool.driver.rules[2].id must be a non-empty string",
    ),
    "sarif result not object": (
        "sarif",
        sarif_edit(lambda d: results(d).append("B602")),
        "runs[0].results[7] must be an object, not 'B602'",
    ),
    "sarif ruleId number": (
        "sarif",
        sarif_edit(lambda d: results(d)[1].update(ruleId=105)),
        "runs[0].results[1].ruleId must be a string, not 105",
    ),
    "sarif no rule at all": (
        "sarif",
        sarif_edit(steps(lambda d: results(d)[3].pop("ruleId"), lambda d: results(d)[3].pop("ruleIndex"))),
        "runs[0].results[3] names no rule",
    ),
    "sarif ruleIndex out of range": (
        "sarif",
        sarif_edit(steps(lambda d: results(d)[3].pop("ruleId"), lambda d: results(d)[3].update(ruleIndex=99))),
        "runs[0].results[3].ruleIndex: 99 is not an index into the driver's rules",
    ),
    "sarif message missing": (
        "sarif",
        sarif_edit(lambda d: results(d)[0].pop("message")),
        "runs[0].results[0].message must be an object, not None",
    ),
    "sarif message text number": (
        "sarif",
        sarif_edit(lambda d: results(d)[0]["message"].update(text=1)),
        "runs[0].results[0].message.text must be a string, not 1",
    ),
    "sarif locations object": (
        "sarif",
        sarif_edit(lambda d: results(d)[2].update(locations={"uri": "a.py"})),
        "runs[0].results[2].locations must be an array",
    ),
    "sarif uri number": (
        "sarif",
        sarif_edit(lambda d: results(d)[2]["locations"][0]["physicalLocation"]["artifactLocation"].update(uri=7)),
        "runs[0].results[2].locations[0].physicalLocation.artifactLocation.uri must be a string, not 7",
    ),
    "sarif startLine string": (
        "sarif",
        sarif_edit(lambda d: results(d)[6]["locations"][0]["physicalLocation"]["region"].update(startLine="5")),
        "runs[0].results[6].locations[0].physicalLocation.region.startLine must be a line number, not '5'",
    ),
    "sarif startLine zero": (
        "sarif",
        sarif_edit(lambda d: results(d)[6]["locations"][0]["physicalLocation"]["region"].update(startLine=0)),
        "region.startLine must be a line number, not 0",
    ),
    "sarif snippet text list": (
        "sarif",
        sarif_edit(lambda d: results(d)[6]["locations"][0]["physicalLocation"]["region"]["snippet"].update(text=[])),
        "runs[0].results[6].locations[0].physicalLocation.region.snippet must be an object",
    ),
    "sarif issue_severity": (
        "sarif",
        sarif_edit(lambda d: results(d)[6]["properties"].update(issue_severity="SEVERE")),
        "runs[0].results[6].properties.issue_severity must be HIGH, MEDIUM or LOW, not 'SEVERE'",
    ),
    "sarif security-severity word": (
        "sarif",
        sarif_edit(lambda d: results(d)[6]["properties"].update({"security-severity": "high"})),
        "runs[0].results[6].properties.security-severity: 'high' is not a number",
    ),
    "sarif security-severity out of range": (
        "sarif",
        sarif_edit(lambda d: results(d)[6]["properties"].update({"security-severity": 11})),
        "security-severity: 11 is not a score from 0 to 10",
    ),
    "sarif result kind": (
        "sarif",
        sarif_edit(lambda d: results(d)[6].update(kind="failure")),
        "runs[0].results[6].kind must be a SARIF result kind, not 'failure'",
    ),
    "sarif default level": (
        "sarif",
        sarif_edit(lambda d: d["runs"][0]["tool"]["driver"]["rules"][0].update(defaultConfiguration={"level": 3})),
        "runs[0].tool.driver.rules[0].defaultConfiguration.level: 3 is not a SARIF level",
    ),
    "sarif tags string": (
        "sarif",
        sarif_edit(lambda d: d["runs"][0]["tool"]["driver"]["rules"][0]["properties"].update(tags="security")),
        "runs[0].tool.driver.rules[0].properties.tags must be an array of strings",
    ),
    # CycloneDX
    "bomFormat": ("cyclonedx", bom_edit(lambda d: d.update(bomFormat="SPDX")), "bomFormat must be 'CycloneDX'"),
    "specVersion 1.2": (
        "cyclonedx",
        lambda: raw(REPORTS / "cyclonedx-env-1.2.json"),
        "specVersion 1.2 is not supported (1.4 or newer)",
    ),
    "specVersion number": (
        "cyclonedx",
        bom_edit(lambda d: d.update(specVersion=1.5)),
        "specVersion must be a string such as '1.5', not 1.5",
    ),
    "specVersion 2.0": (
        "cyclonedx",
        bom_edit(lambda d: d.update(specVersion="2.0")),
        "specVersion 2.0 is not supported",
    ),
    "components object": (
        "cyclonedx",
        bom_edit(lambda d: d.update(components={})),
        "components must be an array, not an object",
    ),
    "component without name": (
        "cyclonedx",
        bom_edit(lambda d: d["components"][4].pop("name")),
        "components[4].name must be a non-empty string, not None",
    ),
    "nested component purl": (
        "cyclonedx",
        bom_edit(lambda d: d["components"][4].update(components=[{"name": "x", "purl": 5}])),
        "components[4].components[0].purl must be a string, not a number",
    ),
    "analysis state": (
        "cyclonedx",
        bom_edit(lambda d: d["vulnerabilities"][0]["analysis"].update(state="affected"), BOM_EXAMPLES / "vex.json"),
        "vulnerabilities[0].analysis.state: 'affected' is not a CycloneDX analysis state",
    ),
    "vulnerability id": (
        "cyclonedx",
        bom_edit(lambda d: d["vulnerabilities"][0].pop("id"), BOM_EXAMPLES / "vex.json"),
        "vulnerabilities[0].id must be a non-empty string, not None",
    ),
    "rating severity": (
        "cyclonedx",
        bom_edit(
            steps(unanalysed, lambda d: d["vulnerabilities"][0]["ratings"][0].update(severity="severe")),
            BOM_EXAMPLES / "vex.json",
        ),
        "vulnerabilities[0].ratings[0].severity: 'severe' is not a CycloneDX severity",
    ),
    "affects ref": (
        "cyclonedx",
        bom_edit(lambda d: d["vulnerabilities"][0]["affects"][0].update(ref=None), BOM_EXAMPLES / "vex.json"),
        "vulnerabilities[0].affects[0].ref must be a non-empty string, not None",
    ),
    "cwes strings": (
        "cyclonedx",
        bom_edit(
            steps(unanalysed, lambda d: d["vulnerabilities"][0].update(cwes=["CWE-611"])), BOM_EXAMPLES / "vex.json"
        ),
        "vulnerabilities[0].cwes[0] must be a CWE number such as 79, not 'CWE-611'",
    ),
    # pip-audit
    "no dependencies": ("pip-audit", audit_edit(lambda d: d.pop("dependencies")), "dependencies is missing"),
    "vulns object": (
        "pip-audit",
        audit_edit(lambda d: d["dependencies"][0].update(vulns={})),
        "dependencies[0].vulns must be an array, not an object",
    ),
    "vuln without id": ("pip-audit", audit_edit(lambda d: first_vuln(d).pop("id")), "dependencies[0].vulns[0].id must"),
    "fix_versions string": (
        "pip-audit",
        audit_edit(lambda d: first_vuln(d).update(fix_versions="2.32.4")),
        "dependencies[0].vulns[0].fix_versions must be an array of strings, not a string",
    ),
    "dependency version": (
        "pip-audit",
        audit_edit(lambda d: d["dependencies"][2].pop("version")),
        "dependencies[2].version must be a non-empty string, not None",
    ),
}


@pytest.mark.parametrize("case", MALFORMED)
def test_malformed_reports_say_what_and_where(case):
    report_format, content, message = MALFORMED[case]

    with pytest.raises(ReportError) as caught:
        parse_report(report_format, content())

    assert message in str(caught.value)
    assert SAFETY_NET not in str(caught.value)


def test_oversized_report():
    content = raw(REPORTS / "bandit.sarif")

    with pytest.raises(ReportError, match=f"report is larger than {len(content) - 1} bytes"):
        parse_report("sarif", content, max_bytes=len(content) - 1)
    assert parse_report("sarif", content, max_bytes=len(content)).findings


def test_default_size_limit_is_50_mib():
    assert DEFAULT_MAX_BYTES == 52428800
    with pytest.raises(ReportError, match="report is larger than 52428800 bytes"):
        parse_report("pip-audit", b" " * (DEFAULT_MAX_BYTES + 1))


def test_utf8_bom_and_utf16_are_read():
    content = raw(REPORTS / "cifuzz.sarif")

    assert parse_report("sarif", b"\xef\xbb\xbf" + content).findings
    assert parse_report("sarif", content.decode().encode("utf-16")).findings


def test_caller_errors_are_not_report_errors():
    with pytest.raises(ValueError, match="unknown report format 'spdx'") as caught:
        parse_report("spdx", b"{}")
    assert not isinstance(caught.value, ReportError)
    with pytest.raises(TypeError):
        parse_report("sarif", raw(REPORTS / "bandit.sarif").decode())  # type: ignore[arg-type]


# --- fuzz: only ReportError or success, and never the catch-all ---------------------------------


def parses_or_refuses(report_format: str, content: bytes) -> None:
    """The report parses to valid findings, or is refused by one of the importers' own checks."""
    refusal = ""
    try:
        report = parse_report(report_format, content)
    except ReportError as error:
        refusal = str(error)
    else:
        assert all(finding.severity in SEVERITIES for finding in report.findings)
    assert SAFETY_NET not in refusal, f"an importer check is missing: {refusal}"


@pytest.mark.parametrize(("report_format", "path"), GOOD, ids=[path.name for _, path in GOOD])
def test_truncated_reports(report_format, path):
    content = raw(path)
    step = max(1, len(content) // 400)
    for cut in [*range(0, len(content), step), len(content) - 1]:
        parses_or_refuses(report_format, content[:cut])


def nodes(value: object, path: tuple = ()) -> Iterator[tuple]:
    """Every position in a decoded document, as a path of keys and indices."""
    yield path
    if isinstance(value, dict):
        for key, child in value.items():
            yield from nodes(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from nodes(child, (*path, index))


REPLACEMENTS = [None, True, 0, -1, 2.5, "", "x", [], [None], {}, {"x": 1}]


@pytest.mark.parametrize(("report_format", "path"), GOOD, ids=[path.name for _, path in GOOD])
def test_every_field_replaced_by_a_wrong_type(report_format, path):
    """Each position of a real report in turn replaced by a value of another type (or deleted):
    the importer must answer with a ReportError or a valid report, never crash."""
    original = doc(path)
    positions = [position for position in nodes(original) if position]
    rng = random.Random(f"{path.name}")
    if len(positions) > 300:  # big SBOMs: a fixed sample keeps the test quick
        positions = rng.sample(positions, 300)
    for position in positions:
        for replacement in [*rng.sample(REPLACEMENTS, 4), "<delete>"]:
            document = copy.deepcopy(original)
            parent = document
            for step in position[:-1]:
                parent = parent[step]
            if replacement == "<delete>":
                del parent[position[-1]]
            else:
                parent[position[-1]] = copy.deepcopy(replacement)
            parses_or_refuses(report_format, json.dumps(document).encode())
