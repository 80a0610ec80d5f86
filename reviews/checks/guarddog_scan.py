"""GuardDog over an extracted plugin: malware patterns, and what the code can do versus what
plugin.toml declares.

GuardDog 3.2 scans source with YARA rules only (no semgrep any more). Its ``capability-*`` rules say
what the code *can* do (open sockets, spawn processes, read files); its ``threat-*`` rules say what
looks malicious. Threat hits become security findings graded by ``THREAT_SEVERITY``:

    =========  ==============================================================================
    Warden     GuardDog rules
    =========  ==============================================================================
    critical   remote code execution and backdoors: base64exec, download-exec, dynamic-loader,
               reverse-shell, steganography, self-propagation, cryptomining
    high       exfiltration (exfiltration, dns-exfil, exfil-messenger, exfil-sysinfo,
               setup-network-in-install), credential and data theft (filesystem-read,
               keylogging, screencapture, process-memory), persistence and damage (autostart,
               destruction, injection-dll, powershell-encoded), install-time tricks (setup-*,
               process-hooks, npm-*), and every obfuscation rule (obfuscation-*): code that hides
               what it does cannot be reviewed
    medium     shady links, process-sysinfo, runtime-enumeration; any threat rule not in the table
    low        runtime-system-info, process-spawn-silent
    =========  ==============================================================================

Capability hits (and ``threat-runtime-environment-read``, GuardDog's only environment rule) become
capability names through ``CAPABILITY_RULES``, and each capability the manifest's ``[permissions]``
does not declare is a *high* ``undeclared-capability`` finding with GuardDog's evidence:

    =======================================  =================  ====================================
    GuardDog rule                            capability         declared by plugin.toml when
    =======================================  =================  ====================================
    capability-network-outbound / -download  network            ``network`` is not empty
    / -lolbas
    capability-process-spawn                 process-spawn      ``subprocess = true``
    capability-filesystem-read               filesystem-read    ``filesystem`` has a ``read:`` entry
    capability-filesystem-write-executable   filesystem-write   ``filesystem`` has a ``write:`` entry
    capability-filesystem-delete             filesystem-delete  ``filesystem`` has a ``write:`` entry
    threat-runtime-environment-read          environment        every variable read is listed in
                                                                ``environment`` (non-empty when
                                                                no name can be read off the code)
    capability-process-schedule              process-schedule   never: no permission exists
    capability-process-hooks                 install-hooks      never
    capability-filesystem-browser            browser-data       never
    capability-runtime-clipboard             clipboard          never
    any other capability-* rule              its own name       never (fails closed on upgrades)
    =======================================  =================  ====================================

Offline: a local directory scan without ``--metadata`` runs only the source-code rules, but importing
GuardDog refreshes its typosquatting lists (top PyPI/npm/RubyGems packages, 30-day cache) over the
network with no timeout, on every start, even for ``--version``. Each run therefore points
``GUARDDOG_TOP_PACKAGES_CACHE_LOCATION`` at fresh placeholder lists of ours (so there is nothing to
refresh; the lists only feed metadata rules, which never run here) and points every proxy variable at
a closed local port, so any download a later GuardDog adds fails at once instead of waiting. The scan
itself runs under GuardDog's kernel sandbox (Landlock, network blocked) where the kernel offers it.
"""

import json
import os
import re
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reviews.checks.tool_result import (
    ToolError,
    ToolResult,
    ToolRun,
    module_version,
    python_module_argv,
    run_tool,
    tail,
)
from reviews.findings_data import FindingData, ReportError

TOOL = "guarddog"
DEFAULT_TIMEOUT = 300.0
NEVER = "never"  # a capability no plugin.toml permission can grant

THREAT_SEVERITY: dict[str, str] = {
    # Remote code execution and backdoors.
    "threat-runtime-obfuscation-base64exec": "critical",
    "threat-process-download-exec": "critical",
    "threat-runtime-dynamic-loader": "critical",
    "threat-network-reverse-shell": "critical",
    "threat-runtime-obfuscation-steganography": "critical",
    "threat-runtime-self-propagation": "critical",
    "threat-process-cryptomining": "critical",
    # Exfiltration.
    "threat-network-exfiltration": "high",
    "threat-network-dns-exfil": "high",
    "threat-network-exfil-messenger": "high",
    "threat-network-exfil-sysinfo": "high",
    "threat-setup-network-in-install": "high",
    # Credential and data theft.
    "threat-filesystem-read": "high",
    "threat-runtime-keylogging": "high",
    "threat-runtime-screencapture": "high",
    "threat-process-memory": "high",
    # Persistence and damage.
    "threat-filesystem-autostart": "high",
    "threat-filesystem-destruction": "high",
    "threat-process-injection-dll": "high",
    "threat-process-powershell-encoded": "high",
    # Install-time tricks.
    "threat-process-hooks": "high",
    "threat-setup-import-aliasing": "high",
    "threat-setup-suspicious-imports": "high",
    "threat-npm-dependency-confusion": "high",
    "threat-npm-http-dependency": "high",
    "threat-npm-preinstall-script": "high",
    # Obfuscation: code that hides what it does cannot be reviewed.
    "threat-runtime-obfuscation": "high",
    "threat-runtime-obfuscation-api": "high",
    "threat-runtime-obfuscation-chr": "high",
    "threat-runtime-obfuscation-dynamic-eval": "high",
    "threat-runtime-obfuscation-general": "high",
    "threat-runtime-obfuscation-hidden-code": "high",
    "threat-runtime-obfuscation-import-exec": "high",
    "threat-runtime-obfuscation-js-mangling": "high",
    "threat-runtime-obfuscation-log-suppress": "high",
    "threat-runtime-obfuscation-pyarmor": "high",
    "threat-runtime-obfuscation-unicode": "high",
    # Suspicious, but common in honest code too.
    "threat-network-outbound-shady-links": "medium",
    "threat-process-sysinfo": "medium",
    "threat-runtime-enumeration": "medium",
    "threat-runtime-system-info": "low",
    "threat-process-spawn-silent": "low",
}
UNKNOWN_THREAT_SEVERITY = "medium"


@dataclass(frozen=True)
class Capability:
    name: str  # Warden's word for it: finding titles, ToolResult.capabilities
    permission: str  # the plugin.toml [permissions] key that can declare it, "" for none
    declared_by: str  # "non-empty" | "true" | "read:" | "write:" | "names" | NEVER


CAPABILITY_RULES: dict[str, Capability] = {
    "capability-network-outbound": Capability("network", "network", "non-empty"),
    "capability-network-download": Capability("network", "network", "non-empty"),
    "capability-network-lolbas": Capability("network", "network", "non-empty"),
    "capability-process-spawn": Capability("process-spawn", "subprocess", "true"),
    "capability-filesystem-read": Capability("filesystem-read", "filesystem", "read:"),
    "capability-filesystem-write-executable": Capability("filesystem-write", "filesystem", "write:"),
    "capability-filesystem-delete": Capability("filesystem-delete", "filesystem", "write:"),
    "threat-runtime-environment-read": Capability("environment", "environment", "names"),
    "capability-process-schedule": Capability("process-schedule", "", NEVER),
    "capability-process-hooks": Capability("install-hooks", "", NEVER),
    "capability-filesystem-browser": Capability("browser-data", "", NEVER),
    "capability-runtime-clipboard": Capability("clipboard", "", NEVER),
}

_DEAD_PROXY = "http://127.0.0.1:9"  # nothing listens there: a download attempt fails at once
_PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")
_TYPOSQUATTING_LISTS = ("pypi", "npm", "rubygems", "go")
_NO_SANDBOX_MESSAGE = b"sandbox is not available"
_ENV_NAME = re.compile(
    r"""(?:os\.(?:environ(?:\.get)?|getenv)|os\.Getenv|env\s*::\s*var(?:_os)?)\s*[\[(]\s*['"]([A-Za-z_]\w*)['"]"""
    r"""|process\.env\.([A-Za-z_]\w*)"""
)


@dataclass(frozen=True)
class Evidence:
    """One GuardDog hit: where, and the code it matched."""

    rule: str
    path: str
    line: int | None
    code: str  # GuardDog's window of a few lines around the hit
    match: str  # the exact text the YARA rule matched
    message: str  # the rule's description

    @property
    def snippet(self) -> str:
        """The matched line alone: the window around it changes with neighbouring edits."""
        for line in self.code.splitlines():
            if self.match.strip() and self.match.strip() in line:
                return line.strip()
        return self.code.strip()


# Running GuardDog.


def run_guarddog(
    root: Path, permissions: Mapping[str, Any], *, timeout: float = DEFAULT_TIMEOUT, sandbox: bool | None = None
) -> ToolResult:
    """Scan ``root`` (an extracted plugin) with GuardDog's source-code rules, offline.

    ``permissions`` is plugin.toml's ``[permissions]`` table. ``sandbox``: None uses GuardDog's kernel
    sandbox when the kernel offers it and says in the summary when it did not; True requires it;
    False turns it off. Raises ToolMissing, ToolTimeout or ToolError when GuardDog gives no report."""
    root = Path(root).resolve()
    if not root.is_dir():
        raise ToolError(f"{root} is not a directory: nothing to scan")
    version = module_version(TOOL)
    with tempfile.TemporaryDirectory(prefix="warden-guarddog-") as scratch:
        env = offline_environment(Path(scratch))
        run, sandboxed = _scan(root, env=env, cwd=Path(scratch), timeout=timeout, sandbox=sandbox)
    report = load_guarddog_report(run.stdout)
    findings, capabilities = findings_from_report(report, permissions)
    summary = _summary(report, findings, capabilities, run, sandboxed)
    return ToolResult(TOOL, version, findings, run.stdout, summary, capabilities)


def offline_environment(cache_dir: Path) -> dict[str, str]:
    """The environment GuardDog runs in: fresh typosquatting lists and dead proxies, so that
    starting GuardDog never waits on the network (see the module docstring)."""
    fresh = json.dumps({"downloaded_timestamp": int(time.time()), "packages": ["warden-offline-placeholder"]})
    for ecosystem in _TYPOSQUATTING_LISTS:
        (cache_dir / f"top_{ecosystem}_packages.json").write_text(fresh)
    env = {key: value for key, value in os.environ.items() if key.lower() != "no_proxy"}
    env.update(dict.fromkeys(_PROXY_VARIABLES, _DEAD_PROXY))
    env["GUARDDOG_TOP_PACKAGES_CACHE_LOCATION"] = str(cache_dir)
    return env


def _scan(root: Path, *, env: dict[str, str], cwd: Path, timeout: float, sandbox: bool | None) -> tuple[ToolRun, bool]:
    """One GuardDog run; in auto mode a second one without the sandbox if the kernel has none."""
    argv = [*python_module_argv(TOOL), "pypi", "scan", str(root), "--output-format", "json"]
    started = time.monotonic()
    run = run_tool([*argv, *_sandbox_flag(sandbox)], name=TOOL, timeout=timeout, cwd=cwd, env=env)
    sandboxed = sandbox is not False
    if sandbox is None and run.returncode != 0 and _NO_SANDBOX_MESSAGE in run.stderr:
        remaining = max(timeout - (time.monotonic() - started), 0.001)
        run = run_tool([*argv, "--no-sandbox"], name=TOOL, timeout=remaining, cwd=cwd, env=env)
        sandboxed = False
    if run.returncode != 0 or not run.stdout.strip():
        raise ToolError(f"guarddog exited with status {run.returncode}: {tail(run.stderr)}")
    return run, sandboxed


def _sandbox_flag(sandbox: bool | None) -> list[str]:
    return {None: [], True: ["--sandbox"], False: ["--no-sandbox"]}[sandbox]


# Reading its report.


def load_guarddog_report(raw: bytes) -> dict:
    """GuardDog's JSON report (``guarddog pypi scan <dir> --output-format json``) as a dict."""
    try:
        report = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReportError(f"guarddog report is not JSON: {exc}") from None
    if not isinstance(report, dict) or not isinstance(report.get("results"), dict):
        raise ReportError("guarddog report must be a JSON object with a 'results' object")
    if not isinstance(report.get("errors", {}), dict):
        raise ReportError("guarddog report: 'errors' must be an object of rule -> message")
    return report


def findings_from_report(report: dict, permissions: Mapping[str, Any]) -> tuple[list[FindingData], set[str]]:
    """Threat findings, undeclared-capability findings and GuardDog's own errors; and every
    capability the code showed, declared or not."""
    evidence = hits(report)
    threats = [threat_finding(hit) for hit in evidence if not is_capability_rule(hit.rule)]
    by_capability = capability_evidence(evidence)
    undeclared = undeclared_capability_findings(by_capability, permissions)
    return threats + undeclared + error_findings(report), set(by_capability)


def hits(report: dict) -> list[Evidence]:
    """Every rule hit in the report, in GuardDog's (sorted) rule order."""
    found = []
    for rule, matches in report["results"].items():
        if not isinstance(matches, list):  # {} (no hit), or a metadata rule's message
            continue
        for index, match in enumerate(matches):
            found.append(_evidence(rule, index, match))
    return found


def _evidence(rule: str, index: int, match: Any) -> Evidence:
    if not isinstance(match, dict) or not isinstance(match.get("location"), str):
        raise ReportError(f"guarddog report: results['{rule}'][{index}] has no 'location'")
    path, line = split_location(match["location"])
    return Evidence(
        rule=rule,
        path=path,
        line=line,
        code=str(match.get("code") or ""),
        match=str(match.get("match") or ""),
        message=str(match.get("message") or ""),
    )


def split_location(location: str) -> tuple[str, int | None]:
    """``"pkg/x.py:12"`` -> ``("pkg/x.py", 12)``; paths are relative to the scanned root."""
    path, _, line = location.rpartition(":")
    if not path or not line.isdigit():
        path, line = location, ""
    path = path.replace("\\", "/").removeprefix("./")
    return path, int(line) if line else None


def is_capability_rule(rule: str) -> bool:
    return rule in CAPABILITY_RULES or rule.startswith("capability-")


def capability_of(rule: str) -> Capability:
    """The table entry; an unknown ``capability-*`` rule from a newer GuardDog cannot be declared,
    so an upgrade shows up as findings rather than passing silently."""
    return CAPABILITY_RULES.get(rule) or Capability(rule.removeprefix("capability-"), "", NEVER)


def threat_finding(hit: Evidence) -> FindingData:
    severity = THREAT_SEVERITY.get(hit.rule, UNKNOWN_THREAT_SEVERITY)
    return FindingData(
        rule_id=hit.rule,
        title=_title(hit.message, hit.rule),
        severity=severity,
        kind="security",
        message=f"{hit.message} (matched {hit.match.strip()!r})" if hit.match.strip() else hit.message,
        path=hit.path,
        line=hit.line,
        tool=TOOL,
        snippet=hit.snippet,
        data={"match": hit.match, "code": hit.code, "rated": "table" if hit.rule in THREAT_SEVERITY else "default"},
    )


def _title(description: str, rule: str) -> str:
    """``"Detects base64 decoding followed by code execution"`` -> ``"Base64 decoding ..."``."""
    text = description.removeprefix("Detects ").strip() or rule
    return text[0].upper() + text[1:]


# Capabilities against the manifest.


def capability_evidence(evidence: Iterable[Evidence]) -> dict[str, list[Evidence]]:
    """Capability name -> the hits that show it, in file order."""
    grouped: dict[str, list[Evidence]] = {}
    for hit in sorted(evidence, key=lambda hit: (hit.path, hit.line or 0, hit.rule)):
        if is_capability_rule(hit.rule):
            grouped.setdefault(capability_of(hit.rule).name, []).append(hit)
    return grouped


def undeclared_capability_findings(
    by_capability: Mapping[str, list[Evidence]], permissions: Mapping[str, Any]
) -> list[FindingData]:
    """One high finding per capability the manifest does not declare, with its evidence."""
    findings = []
    for name in sorted(by_capability):
        evidence = by_capability[name]
        capability = capability_of(evidence[0].rule)
        missing = undeclared_names(evidence, permissions) if capability.declared_by == "names" else []
        if is_declared(capability, permissions) and not missing:
            continue
        findings.append(_undeclared_finding(capability, evidence, permissions, missing))
    return findings


def is_declared(capability: Capability, permissions: Mapping[str, Any]) -> bool:
    """Whether plugin.toml's [permissions] grants the capability (see the table above)."""
    value = permissions.get(capability.permission) if capability.permission else None
    match capability.declared_by:
        case "true":
            return value is True
        case "non-empty" | "names":
            return bool(_entries(value))
        case "read:" | "write:":
            return any(entry.startswith(capability.declared_by) for entry in _entries(value))
    return False


def undeclared_names(evidence: Iterable[Evidence], permissions: Mapping[str, Any]) -> list[str]:
    """Environment variables the code reads that ``environment`` does not list."""
    declared = set(_entries(permissions.get("environment")))
    return sorted(environment_names(evidence) - declared)


def environment_names(evidence: Iterable[Evidence]) -> set[str]:
    """Variable names read off GuardDog's code windows (``os.environ["X"]``, ``os.getenv("X")``,
    ``process.env.X``). GuardDog's own match is cut short (``os.environ["ACME_TOKEN`` for
    ``ACME_TOKEN_V2``), so the names are taken from the code around it."""
    names: set[str] = set()
    for hit in evidence:
        for python_like, javascript in _ENV_NAME.findall(hit.code or hit.match):
            names.add(python_like or javascript)
    return names


def _undeclared_finding(
    capability: Capability, evidence: list[Evidence], permissions: Mapping[str, Any], missing: list[str]
) -> FindingData:
    first = next((hit for hit in evidence if environment_names([hit]) & set(missing)), evidence[0])
    return FindingData(
        rule_id="undeclared-capability",
        title=f"Undeclared capability: {capability.name}",
        severity="high",
        kind="capability",
        message=_undeclared_message(capability, evidence, permissions, missing),
        path=first.path,
        line=first.line,
        tool=TOOL,
        snippet=first.snippet,
        data={
            "capability": capability.name,
            "permission": capability.permission,
            "declared": permissions.get(capability.permission) if capability.permission else None,
            "undeclared_names": missing,
            "rules": sorted({hit.rule for hit in evidence}),
            "evidence": [
                {"rule": hit.rule, "path": hit.path, "line": hit.line, "code": hit.snippet, "match": hit.match}
                for hit in evidence
            ],
        },
    )


def _undeclared_message(
    capability: Capability, evidence: list[Evidence], permissions: Mapping[str, Any], missing: list[str]
) -> str:
    where = ", ".join(f"{hit.path}:{hit.line}" for hit in evidence)
    rules = ", ".join(sorted({hit.rule for hit in evidence}))
    if capability.declared_by == NEVER:
        return f"The code shows {capability.name} ({rules} at {where}); no plugin.toml permission allows it."
    declared = json.dumps(permissions.get(capability.permission))
    what = f"reads {', '.join(missing)}" if missing else f"shows {capability.name}"
    return (
        f"The code {what} ({rules} at {where}) but plugin.toml declares "
        f"{capability.permission} = {declared} under [permissions]."
    )


def _entries(value: Any) -> list[str]:
    """A permission value as a list of strings: ``"read:/x"`` and ``["read:/x"]`` alike."""
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, list | tuple):
        return [str(entry) for entry in value if str(entry)]
    return []


# GuardDog's own errors, and the summary.


def error_findings(report: dict) -> list[FindingData]:
    """GuardDog's own errors: info findings, not a crash, one per distinct error.

    A rule that fails on one file (GuardDog 3.2: a file it cannot open) stops there, so the files
    after it went unchecked by that rule; the finding says so rather than letting the gap pass."""
    scanned = str(report.get("package") or "").rstrip("/")
    rules_by_message: dict[str, list[str]] = {}
    for rule, message in sorted((report.get("errors") or {}).items()):
        text = str(message).replace(scanned + "/", "") if scanned else str(message)
        rules_by_message.setdefault(text, []).append(rule)
    return [
        FindingData(
            rule_id="guarddog.error",
            title=f"GuardDog could not run {len(rules)} rule(s): {message}"[:200],
            severity="info",
            kind="security",
            message=f"{message}. Affected rules stopped there and did not check later files: {', '.join(rules)}.",
            tool=TOOL,
            data={"rules": rules, "error": message},
        )
        for message, rules in rules_by_message.items()
    ]


def _summary(report: dict, findings: list[FindingData], capabilities: set[str], run: ToolRun, sandboxed: bool) -> dict:
    risk = report.get("risk_score") or {}
    return {
        "rules": len(report["results"]),
        "rules_hit": sorted(rule for rule, matches in report["results"].items() if matches),
        "issues": report.get("issues", 0),
        "errors": len(report.get("errors") or {}),
        "risk_score": {"score": risk.get("score"), "label": risk.get("label")},
        "capabilities": sorted(capabilities),
        "by_severity": dict(Counter(finding.severity for finding in findings)),
        "sandbox": sandboxed,
        "seconds": run.seconds,
        "stderr": tail(run.stderr, 1000),
    }
