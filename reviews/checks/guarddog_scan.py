"""GuardDog over an extracted plugin: malware patterns, and what the code can do versus what
plugin.toml declares.

Its report becomes findings in two parts: threat hits graded by severity
(reviews/checks/guarddog_report.py), and capabilities held against the manifest's
``[permissions]`` (reviews/checks/guarddog_capabilities.py).

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
import tempfile
import time
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from reviews.checks.guarddog_capabilities import (
    capability_evidence,
    is_capability_rule,
    undeclared_capability_findings,
)
from reviews.checks.guarddog_report import TOOL, error_findings, hits, load_guarddog_report, threat_finding
from reviews.checks.tool_result import (
    ToolError,
    ToolResult,
    ToolRun,
    module_version,
    python_module_argv,
    run_tool,
    tail,
)
from reviews.findings_data import FindingData

DEFAULT_TIMEOUT = 300.0

_DEAD_PROXY = "http://127.0.0.1:9"  # nothing listens there: a download attempt fails at once
_PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")
_TYPOSQUATTING_LISTS = ("pypi", "npm", "rubygems", "go")
_NO_SANDBOX_MESSAGE = b"sandbox is not available"


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


def findings_from_report(report: dict, permissions: Mapping[str, Any]) -> tuple[list[FindingData], set[str]]:
    """Threat findings, undeclared-capability findings and GuardDog's own errors; and every
    capability the code showed, declared or not."""
    evidence = hits(report)
    threats = [threat_finding(hit) for hit in evidence if not is_capability_rule(hit.rule)]
    by_capability = capability_evidence(evidence)
    undeclared = undeclared_capability_findings(by_capability, permissions)
    return threats + undeclared + error_findings(report), set(by_capability)


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
