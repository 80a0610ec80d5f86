"""GuardDog's JSON report: every rule hit in it as ``Evidence``, threat hits as graded findings,
and GuardDog's own errors as info findings.

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
"""

import json
from dataclasses import dataclass
from typing import Any

from reviews.findings_data import FindingData, ReportError

TOOL = "guarddog"

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
