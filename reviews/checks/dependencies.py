"""``security.dependencies``: the plugin's pinned requirements against the OSV advisory store."""

import json

from reviews.advisories.store import match_findings, match_requirements

from . import CheckContext, CheckOutcome, register

# A dependency finding at or above this severity fails the check (the reviewer decides the rest).
FAIL_AT = ("critical", "high")


@register("security.dependencies", title="Dependency vulnerabilities (OSV)", tool="osv")
def dependency_vulnerabilities(ctx: CheckContext) -> CheckOutcome:
    requirements = ctx.manifest["dependencies"]["requirements"]
    matches, unpinned = match_requirements(requirements=requirements)
    findings = match_findings(matches)
    report = [{"requirement": f.snippet, **f.data, "severity": f.severity} for f in findings]
    return CheckOutcome(
        passed=not any(f.severity in FAIL_AT for f in findings),
        findings=findings,
        summary={"requirements": len(requirements), "unpinned": unpinned, "vulnerable": len(findings)},
        report=json.dumps(report, indent=2).encode(),
        report_name="osv-matches.json",
    )
