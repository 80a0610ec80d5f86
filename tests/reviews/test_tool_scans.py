"""bandit and GuardDog on the fixture plugins, and their report parsers on stored real reports.

Plain pytest, no database. Tests that run a tool skip where it is not installed; the parser tests
read the tools' own JSON kept in tests/fixtures/tools/ (see regenerate.py there), so parsing is
covered everywhere. GuardDog is looked up with ``find_spec``, never imported here: importing it
starts network downloads (see reviews/checks/guarddog_scan.py).
"""

import importlib.metadata
import importlib.util
import json
import shutil
import tomllib
from pathlib import Path

import pytest

from reviews.checks.bandit_scan import load_bandit_report, parse_bandit_report, run_bandit, warden_severity
from reviews.checks.guarddog_capabilities import (
    CAPABILITY_RULES,
    NEVER,
    capability_of,
    environment_names,
    is_declared,
    undeclared_capability_findings,
)
from reviews.checks.guarddog_report import THREAT_SEVERITY, Evidence, load_guarddog_report, split_location
from reviews.checks.guarddog_scan import findings_from_report, offline_environment, run_guarddog
from reviews.checks.tool_result import ToolError, ToolMissing, ToolTimeout, module_version
from reviews.findings_data import FindingData, ReportError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
PLUGINS = FIXTURES / "plugins"
REPORTS = FIXTURES / "tools"
NOTHING_DECLARED = {"network": [], "filesystem": [], "subprocess": False, "environment": []}

needs_bandit = pytest.mark.skipif(importlib.util.find_spec("bandit") is None, reason="bandit is not installed")
needs_guarddog = pytest.mark.skipif(importlib.util.find_spec("guarddog") is None, reason="guarddog is not installed")


def permissions(plugin: str) -> dict:
    return tomllib.loads((PLUGINS / plugin / "plugin.toml").read_text())["permissions"]


def stored(name: str) -> bytes:
    return (REPORTS / name).read_bytes()


def only(findings: list[FindingData], rule_id: str) -> FindingData:
    [finding] = [finding for finding in findings if finding.rule_id == rule_id]
    return finding


def titled(findings: list[FindingData], title: str) -> FindingData:
    [finding] = [finding for finding in findings if finding.title == title]
    return finding


# bandit, run on the fixture plugins.


@needs_bandit
def test_bandit_finds_shell_true_and_unsafe_yaml_load():
    result = run_bandit(PLUGINS / "bandit-bad")

    shell = only(result.findings, "B602")
    assert (shell.severity, shell.cwe, shell.path, shell.line) == ("high", "CWE-78", "acme_shell/plugin.py", 22)
    assert shell.snippet == "return subprocess.call(command, shell=True)"
    assert shell.data["confidence"] == "HIGH"
    assert shell.data["test_name"] == "subprocess_popen_with_shell_equals_true"
    assert shell.data["more_info"].startswith("https://bandit.readthedocs.io/")
    assert shell.tool == "bandit"
    yaml_load = only(result.findings, "B506")
    assert (yaml_load.severity, yaml_load.path, yaml_load.line) == ("medium", "acme_shell/plugin.py", 18)
    assert result.tool == "bandit"
    assert result.tool_version == importlib.metadata.version("bandit")
    assert len(json.loads(result.raw)["results"]) == result.summary["issues"] == 3


@needs_bandit
def test_bandit_finds_nothing_in_the_clean_plugin():
    result = run_bandit(PLUGINS / "clean")

    assert result.findings == []
    assert result.summary["files"] == 2


@needs_bandit
def test_bandit_reports_a_file_it_cannot_parse_as_info():
    result = run_bandit(PLUGINS / "py2-legacy")

    finding = only(result.findings, "bandit.parse-error")
    assert (finding.severity, finding.path, finding.line) == ("info", "legacy_report/plugin.py", None)
    assert result.summary["parse_errors"] == 1


@needs_bandit
def test_the_plugin_cannot_silence_bandit(tmp_path):
    """A shipped .bandit file, # nosec comments and a file name bandit excludes by default."""
    plugin = tmp_path / "bandit-bad"
    shutil.copytree(PLUGINS / "bandit-bad", plugin)
    (plugin / ".bandit").write_text("[bandit]\nskips = B602,B506\nexclude = ./acme_shell\n")
    source = plugin / "acme_shell" / "plugin.py"
    source.write_text(source.read_text().replace("shell=True)", "shell=True)  # nosec"))
    (plugin / "acme_shell" / "CVS_export.py").write_text("import yaml\n\nyaml.load(open('x'))\n")

    found = {(finding.rule_id, finding.path) for finding in run_bandit(plugin).findings}

    assert ("B602", "acme_shell/plugin.py") in found
    assert ("B506", "acme_shell/CVS_export.py") in found


@needs_bandit
def test_bandit_over_its_time_budget_is_stopped_with_a_clear_error():
    with pytest.raises(ToolTimeout, match=r"bandit did not finish within 0\.001 s"):
        run_bandit(PLUGINS / "bandit-bad", timeout=0.001)


def test_a_missing_scanner_is_a_setup_error_not_a_clean_report():
    with pytest.raises(ToolMissing, match="warden_no_such_scanner is not installed"):
        module_version("warden_no_such_scanner")


def test_bandit_refuses_a_missing_directory(tmp_path):
    with pytest.raises(ToolError, match="is not a directory"):
        run_bandit(tmp_path / "absent")


# bandit's stored reports.


def test_stored_bandit_report_parses_into_findings():
    findings = parse_bandit_report(stored("bandit-bandit-bad.json"))

    assert [(f.rule_id, f.severity, f.cwe, f.path, f.line) for f in findings] == [
        ("B404", "low", "CWE-78", "acme_shell/plugin.py", 3),
        ("B506", "medium", "CWE-20", "acme_shell/plugin.py", 18),
        ("B602", "high", "CWE-78", "acme_shell/plugin.py", 22),
    ]
    assert only(findings, "B506").snippet == "return yaml.load(text)"
    assert only(findings, "B506").data["code"].startswith("17 def load_settings")


def test_stored_bandit_reports_of_the_other_plugins():
    assert parse_bandit_report(stored("bandit-clean.json")) == []
    assert {f.rule_id for f in parse_bandit_report(stored("bandit-guarddog-bad.json"))} == {"B102", "B310"}
    [parse_error] = parse_bandit_report(stored("bandit-py2-legacy.json"))
    assert (parse_error.rule_id, parse_error.severity, parse_error.path) == (
        "bandit.parse-error",
        "info",
        "legacy_report/plugin.py",
    )
    assert "syntax error" in parse_error.message


def test_absolute_bandit_paths_are_made_relative_to_the_root():
    report = json.loads(stored("bandit-bandit-bad.json"))
    for issue in report["results"]:
        issue["filename"] = "/srv/extract/acme" + issue["filename"].removeprefix(".")

    findings = parse_bandit_report(json.dumps(report).encode(), Path("/srv/extract/acme"))

    assert {finding.path for finding in findings} == {"acme_shell/plugin.py"}


@pytest.mark.parametrize(
    ("severity", "confidence", "expected"),
    [
        ("HIGH", "HIGH", "high"),
        ("HIGH", "MEDIUM", "high"),
        ("HIGH", "LOW", "medium"),
        ("MEDIUM", "HIGH", "medium"),
        ("MEDIUM", "MEDIUM", "medium"),
        ("MEDIUM", "LOW", "low"),
        ("LOW", "HIGH", "low"),
        ("LOW", "LOW", "low"),
        ("UNDEFINED", "HIGH", "info"),
    ],
)
def test_bandit_severity_and_confidence_fold_into_one_severity(severity, confidence, expected):
    assert warden_severity(severity, confidence) == expected


@pytest.mark.parametrize(
    ("raw", "complaint"),
    [
        (b"<html>", "not JSON"),
        (b"[]", "JSON object"),
        (b'{"results": []}', "no 'errors' list"),
        (b'{"results": [{"test_id": "B602"}], "errors": []}', r"results\[0\] lacks"),
        (b'{"results": [], "errors": [{"reason": "x"}]}', r"errors\[0\] has no 'filename'"),
    ],
)
def test_unreadable_bandit_reports_say_what_is_wrong(raw, complaint):
    with pytest.raises(ReportError, match=complaint):
        parse_bandit_report(raw)


# GuardDog, run on the fixture plugins.


@needs_guarddog
def test_guarddog_finds_base64_exec_and_undeclared_network():
    result = run_guarddog(PLUGINS / "guarddog-bad", permissions("guarddog-bad"))

    base64_exec = only(result.findings, "threat-runtime-obfuscation-base64exec")
    assert (base64_exec.severity, base64_exec.kind, base64_exec.path, base64_exec.line) == (
        "critical",
        "security",
        "acme_beacon/plugin.py",
        17,
    )
    assert base64_exec.snippet == "exec(base64.b64decode(_STAGE))"
    network = titled(result.findings, "Undeclared capability: network")
    assert (network.rule_id, network.severity, network.kind) == ("undeclared-capability", "high", "capability")
    assert (network.path, network.line) == ("acme_beacon/plugin.py", 23)
    assert "requests.post(" in network.snippet
    assert network.data["rules"] == ["capability-network-download", "capability-network-outbound"]
    assert "network = []" in network.message
    assert {"network", "process-spawn"} <= result.capabilities
    assert result.tool_version == importlib.metadata.version("guarddog")
    assert json.loads(result.raw)["results"]["threat-runtime-obfuscation-base64exec"]


@needs_guarddog
def test_guarddog_finds_nothing_undeclared_in_the_clean_plugin():
    result = run_guarddog(PLUGINS / "clean", permissions("clean"))

    assert result.findings == []
    assert result.capabilities == {"filesystem-read", "environment"}


@needs_guarddog
def test_what_the_clean_plugin_uses_is_flagged_when_not_declared():
    result = run_guarddog(PLUGINS / "clean", NOTHING_DECLARED)

    assert {finding.title for finding in result.findings} == {
        "Undeclared capability: environment",
        "Undeclared capability: filesystem-read",
    }
    environment = titled(result.findings, "Undeclared capability: environment")
    assert environment.data["undeclared_names"] == ["CSV_SUMMARY_TOKEN"]
    assert "reads CSV_SUMMARY_TOKEN" in environment.message


@needs_guarddog
def test_guarddog_starts_without_touching_the_network():
    """Without the fresh placeholder lists GuardDog logs "Network error ... Failed to download"
    on every start; the wrapper's dead proxies turn any attempt into such a line at once."""
    result = run_guarddog(PLUGINS / "bandit-bad", permissions("bandit-bad"))

    assert "Network error" not in result.summary["stderr"]
    assert "Failed to download" not in result.summary["stderr"]
    assert result.findings == []  # it spawns a process, and declares subprocess = true
    assert result.capabilities == {"process-spawn"}


@needs_guarddog
def test_guarddog_sandbox_can_be_turned_off_and_the_summary_says_so():
    result = run_guarddog(PLUGINS / "guarddog-bad", NOTHING_DECLARED, sandbox=False)

    assert result.summary["sandbox"] is False
    assert "without kernel-level sandbox" in result.summary["stderr"]
    assert only(result.findings, "threat-runtime-obfuscation-base64exec").line == 17


@needs_guarddog
def test_guarddog_errors_become_info_findings(tmp_path):
    plugin = tmp_path / "plugin"
    shutil.copytree(PLUGINS / "guarddog-bad", plugin)
    (plugin / "acme_beacon" / "vendored.py").symlink_to(tmp_path / "missing.py")

    result = run_guarddog(plugin, permissions("guarddog-bad"))

    error = only(result.findings, "guarddog.error")
    assert error.severity == "info"
    assert 'could not open file "acme_beacon/vendored.py"' in error.message
    assert result.summary["errors"] == len(error.data["rules"]) > 1
    assert only(result.findings, "threat-runtime-obfuscation-base64exec").severity == "critical"


@needs_guarddog
def test_guarddog_over_its_time_budget_is_stopped_with_a_clear_error():
    with pytest.raises(ToolTimeout, match="guarddog did not finish within"):
        run_guarddog(PLUGINS / "guarddog-bad", NOTHING_DECLARED, timeout=0.001)


def test_offline_environment_has_fresh_lists_and_dead_proxies(tmp_path):
    env = offline_environment(tmp_path)

    assert env["GUARDDOG_TOP_PACKAGES_CACHE_LOCATION"] == str(tmp_path)
    for ecosystem in ("pypi", "npm", "rubygems", "go"):
        cache = json.loads((tmp_path / f"top_{ecosystem}_packages.json").read_text())
        assert cache["packages"] and cache["downloaded_timestamp"] > 0
    assert env["HTTPS_PROXY"] == env["https_proxy"] == "http://127.0.0.1:9"
    assert "NO_PROXY" not in env and "no_proxy" not in env


# GuardDog's stored reports and the tables.


def test_stored_guarddog_report_parses_into_findings_and_capabilities():
    report = load_guarddog_report(stored("guarddog-guarddog-bad.json"))

    findings, capabilities = findings_from_report(report, permissions("guarddog-bad"))

    assert sorted((f.rule_id, f.severity, f.line) for f in findings if f.kind == "security") == [
        ("threat-process-download-exec", "critical", 17),
        ("threat-process-download-exec", "critical", 27),
        ("threat-runtime-obfuscation-base64exec", "critical", 17),
    ]
    assert sorted(f.title for f in findings if f.kind == "capability") == [
        "Undeclared capability: filesystem-read",
        "Undeclared capability: network",
        "Undeclared capability: process-spawn",
    ]
    assert capabilities == {"network", "process-spawn", "filesystem-read"}


def test_stored_guarddog_report_with_everything_declared_has_only_threats():
    report = load_guarddog_report(stored("guarddog-guarddog-bad.json"))
    granted = {"network": ["collector.acme-beacon.example:443"], "filesystem": ["read:/"], "subprocess": True}

    findings, _ = findings_from_report(report, granted)

    assert {finding.kind for finding in findings} == {"security"}


def test_stored_reports_of_the_clean_plugins():
    clean = load_guarddog_report(stored("guarddog-clean.json"))
    assert findings_from_report(clean, permissions("clean")) == ([], {"filesystem-read", "environment"})
    legacy = load_guarddog_report(stored("guarddog-py2-legacy.json"))
    assert findings_from_report(legacy, NOTHING_DECLARED) == ([], set())


def test_stored_guarddog_errors_become_one_info_finding_per_error():
    report = load_guarddog_report(stored("guarddog-errors.json"))

    findings, _ = findings_from_report(report, permissions("guarddog-bad"))

    error = only(findings, "guarddog.error")
    assert error.severity == "info"
    assert len(error.data["rules"]) == len(report["errors"])
    assert error.data["error"] == 'failed to run rule: could not open file "acme_beacon/vendored.py"'


@pytest.mark.parametrize(
    ("rule", "granted", "declared"),
    [
        ("capability-network-outbound", {"network": []}, False),
        ("capability-network-outbound", {"network": ["api.acme.example:443"]}, True),
        ("capability-network-download", {}, False),
        ("capability-process-spawn", {"subprocess": False}, False),
        ("capability-process-spawn", {"subprocess": "yes"}, False),
        ("capability-process-spawn", {"subprocess": True}, True),
        ("capability-filesystem-read", {"filesystem": ["write:/tmp"]}, False),
        ("capability-filesystem-read", {"filesystem": ["read:/data/exports"]}, True),
        ("capability-filesystem-write-executable", {"filesystem": ["read:/data"]}, False),
        ("capability-filesystem-write-executable", {"filesystem": ["write:/tmp"]}, True),
        ("capability-filesystem-delete", {"filesystem": "write:/tmp"}, True),
        ("threat-runtime-environment-read", {"environment": []}, False),
        ("threat-runtime-environment-read", {"environment": ["ACME_TOKEN"]}, True),
        ("capability-runtime-clipboard", {"network": ["x:1"], "subprocess": True, "filesystem": ["read:/"]}, False),
        ("capability-process-hooks", {"subprocess": True}, False),
    ],
)
def test_capability_rules_map_to_manifest_permissions(rule, granted, declared):
    assert is_declared(CAPABILITY_RULES[rule], granted) is declared


def test_an_unknown_capability_rule_cannot_be_declared():
    capability = capability_of("capability-runtime-bluetooth")

    assert (capability.name, capability.declared_by) == ("runtime-bluetooth", NEVER)


def env_read(code: str, match: str) -> Evidence:
    return Evidence("threat-runtime-environment-read", "pkg/x.py", 3, code, match, "reads environment")


def test_environment_names_are_read_off_the_code_around_the_match():
    hit = env_read(
        "key = os.environ[\"ACME_TOKEN_V2\"]\nother = os.getenv('OTHER_KEY')\nconst t = process.env.NPM_TOKEN",
        'os.environ["ACME_TOKEN',
    )

    assert environment_names([hit]) == {"ACME_TOKEN_V2", "OTHER_KEY", "NPM_TOKEN"}


def test_each_environment_variable_read_must_be_declared():
    hits = {"environment": [env_read('secret = os.environ["AWS_SECRET_KEY"]', 'os.environ["AWS_SECRET')]}

    [finding] = undeclared_capability_findings(hits, {"environment": ["ACME_TOKEN"]})

    assert finding.title == "Undeclared capability: environment"
    assert finding.data["undeclared_names"] == ["AWS_SECRET_KEY"]
    assert undeclared_capability_findings(hits, {"environment": ["ACME_TOKEN", "AWS_SECRET_KEY"]}) == []


@needs_guarddog
def test_every_installed_guarddog_rule_has_a_place_in_the_tables():
    """A GuardDog upgrade that adds rules fails here until they are rated on purpose."""
    rules_dir = Path(importlib.util.find_spec("guarddog").origin).parent / "analyzer" / "sourcecode"
    rules = {path.stem for path in rules_dir.glob("*.yar") if not path.stem.startswith("extension_")}

    assert {rule for rule in rules if rule.startswith("capability-")} <= set(CAPABILITY_RULES)
    assert {rule for rule in rules if rule.startswith("threat-")} <= set(THREAT_SEVERITY) | set(CAPABILITY_RULES)


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        ("acme/plugin.py:17", ("acme/plugin.py", 17)),
        ("./acme/plugin.py:3", ("acme/plugin.py", 3)),
        ("acme\\plugin.py:3", ("acme/plugin.py", 3)),
        ("setup.py", ("setup.py", None)),
    ],
)
def test_guarddog_locations_split_into_path_and_line(location, expected):
    assert split_location(location) == expected


@pytest.mark.parametrize(
    ("raw", "complaint"),
    [
        (b"Traceback (most recent call last)", "not JSON"),
        (b'{"issues": 0}', "'results' object"),
        (b'{"results": {}, "errors": []}', "'errors' must be an object"),
        (b'{"results": {"threat-x": [{"code": "x"}]}}', r"results\['threat-x'\]\[0\] has no 'location'"),
    ],
)
def test_unreadable_guarddog_reports_say_what_is_wrong(raw, complaint):
    with pytest.raises(ReportError, match=complaint):
        findings_from_report(load_guarddog_report(raw), NOTHING_DECLARED)


def test_bandit_report_loader_keeps_the_metrics():
    report = load_bandit_report(stored("bandit-bandit-bad.json"))

    assert report["metrics"]["_totals"]["loc"] == 13
