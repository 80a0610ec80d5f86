"""What GuardDog says the code can do, held against what plugin.toml declares.

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
"""

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from reviews.checks.guarddog_report import TOOL, Evidence
from reviews.findings_data import FindingData

NEVER = "never"  # a capability no plugin.toml permission can grant


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


_ENV_NAME = re.compile(
    r"""(?:os\.(?:environ(?:\.get)?|getenv)|os\.Getenv|env\s*::\s*var(?:_os)?)\s*[\[(]\s*['"]([A-Za-z_]\w*)['"]"""
    r"""|process\.env\.([A-Za-z_]\w*)"""
)


def is_capability_rule(rule: str) -> bool:
    return rule in CAPABILITY_RULES or rule.startswith("capability-")


def capability_of(rule: str) -> Capability:
    """The table entry; an unknown ``capability-*`` rule from a newer GuardDog cannot be declared,
    so an upgrade shows up as findings rather than passing silently."""
    return CAPABILITY_RULES.get(rule) or Capability(rule.removeprefix("capability-"), "", NEVER)


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
