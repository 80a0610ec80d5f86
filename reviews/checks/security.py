"""Static analysis (bandit) and the malicious-pattern and capability scan (GuardDog).

Both tools run in child processes of the worker with a timeout; what they cannot do
(missing tool, timeout, no report) errors the run so that nobody mistakes it for a pass.
"""

from django.conf import settings

from . import CheckContext, CheckOutcome, register
from .bandit_scan import run_bandit
from .guarddog_scan import run_guarddog
from .tool_result import ToolResult

FAIL_AT = ("critical", "high")


def _outcome(result: ToolResult, report_name: str) -> CheckOutcome:
    return CheckOutcome(
        passed=not any(f.severity in FAIL_AT for f in result.findings),
        findings=result.findings,
        summary=result.summary,
        report=result.raw,
        report_name=report_name,
        tool_version=result.tool_version,
    )


@register("security.bandit", title="Static analysis (bandit)", tool="bandit")
def static_analysis(ctx: CheckContext) -> CheckOutcome:
    return _outcome(run_bandit(ctx.root, timeout=settings.WARDEN_TOOL_TIMEOUT), "bandit.json")


@register("security.guarddog", title="Malicious patterns and capabilities (GuardDog)", tool="guarddog")
def malicious_patterns(ctx: CheckContext) -> CheckOutcome:
    result = run_guarddog(ctx.root, ctx.manifest["permissions"], timeout=settings.WARDEN_TOOL_TIMEOUT)
    return _outcome(result, "guarddog.json")
