"""Bandit over an extracted plugin: one finding per issue bandit reports.

Bandit grades each issue twice, by severity and by its confidence that the pattern is real. Warden
folds the two into one severity, so a likely-false alarm does not block an approval as a sure one
would:

    ==================  ==================  ==========
    bandit severity     bandit confidence   Warden
    ==================  ==================  ==========
    HIGH                HIGH or MEDIUM      high
    HIGH                LOW                 medium
    MEDIUM              HIGH or MEDIUM      medium
    MEDIUM              LOW                 low
    LOW                 any                 low
    UNDEFINED           any                 info
    file not parsable   --                  info (rule ``bandit.parse-error``)
    ==================  ==================  ==========

Each finding keeps bandit's own grades, test id and name, CWE, ``more_info`` link and line range in
``data``. The snippet is the flagged line(s) only, without bandit's context lines, so the fingerprint
survives edits next to the issue; the context is kept in ``data["code"]``.

The plugin's author controls every file bandit reads, so bandit runs with:

- ``--ini`` pointing at an empty file of ours: otherwise a ``.bandit`` file shipped in the plugin is
  read and can skip tests, exclude paths or redirect the report into another file;
- ``--ignore-nosec``: otherwise ``# nosec`` comments in the plugin hide its own findings;
- ``-x ""``: bandit's default exclusions (``.git``, ``.tox``, ``CVS``, ``*.egg`` ...) are matched as
  substrings of the path, so a module called ``CVS_export.py`` would silently go unscanned.
"""

import json
import re
import tempfile
from collections import Counter
from pathlib import Path, PurePosixPath

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

TOOL = "bandit"
DEFAULT_TIMEOUT = 300.0

# (bandit severity, bandit confidence) -> Warden severity; see the module docstring.
_SEVERITY = {
    ("HIGH", "HIGH"): "high",
    ("HIGH", "MEDIUM"): "high",
    ("HIGH", "LOW"): "medium",
    ("MEDIUM", "HIGH"): "medium",
    ("MEDIUM", "MEDIUM"): "medium",
    ("MEDIUM", "LOW"): "low",
}
_CODE_LINE = re.compile(r"^(\d+) ?(.*)$")


def run_bandit(root: Path, *, timeout: float = DEFAULT_TIMEOUT) -> ToolResult:
    """Scan every ``.py`` file under ``root`` (an extracted plugin) and return its findings.

    Raises ToolMissing, ToolTimeout or ToolError when bandit gives no report; a file it cannot
    parse is an info finding, not an error."""
    root = _directory(root)
    version = module_version(TOOL)
    with tempfile.TemporaryDirectory(prefix="warden-bandit-") as scratch:
        ini = Path(scratch) / "warden.bandit"
        ini.write_text("[bandit]\n")
        argv = [*python_module_argv(TOOL), "-r", ".", "-f", "json", "-q", "--ignore-nosec", "-x", "", "--ini", str(ini)]
        # Run from the plugin root with target "." so report paths are relative ("./pkg/x.py").
        run = run_tool(argv, name=TOOL, timeout=timeout, cwd=root)
    if run.returncode not in (0, 1):  # 1 means "issues found"
        raise ToolError(f"bandit exited with status {run.returncode}: {tail(run.stderr)}")
    report = load_bandit_report(run.stdout)
    findings = findings_from_report(report, root)
    return ToolResult(TOOL, version, findings, run.stdout, _summary(report, findings, run))


def parse_bandit_report(raw: bytes, root: Path | None = None) -> list[FindingData]:
    """Findings from a bandit JSON report (``bandit -f json``), e.g. one stored as evidence."""
    return findings_from_report(load_bandit_report(raw), root)


def load_bandit_report(raw: bytes) -> dict:
    """The report as a dict, or ReportError saying what is wrong with it."""
    try:
        report = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReportError(f"bandit report is not JSON: {exc}") from None
    if not isinstance(report, dict):
        raise ReportError("bandit report must be a JSON object with 'results' and 'errors'")
    for key in ("results", "errors"):
        if not isinstance(report.get(key), list):
            raise ReportError(f"bandit report has no '{key}' list")
    return report


def findings_from_report(report: dict, root: Path | None = None) -> list[FindingData]:
    """Issues first, then one info finding per file bandit could not read."""
    findings = [_issue_finding(issue, index, root) for index, issue in enumerate(report["results"])]
    findings += [_parse_error_finding(error, index, root) for index, error in enumerate(report["errors"])]
    return findings


def warden_severity(severity: str, confidence: str) -> str:
    """Bandit's two grades folded into one; see the table in the module docstring."""
    severity, confidence = severity.upper(), confidence.upper()
    if severity == "LOW":
        return "low"
    return _SEVERITY.get((severity, confidence), "info")


def _issue_finding(issue: dict, index: int, root: Path | None) -> FindingData:
    try:
        test_id, text = str(issue["test_id"]), str(issue["issue_text"])
        severity, confidence = str(issue["issue_severity"]), str(issue["issue_confidence"])
        filename, line = str(issue["filename"]), int(issue["line_number"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ReportError(f"bandit report: results[{index}] lacks a valid {exc}") from None
    line_range = [int(n) for n in issue.get("line_range") or [line]]
    cwe = issue.get("issue_cwe") or {}
    return FindingData(
        rule_id=test_id,
        title=f"{test_id}: {_first_sentence(text)}",
        severity=warden_severity(severity, confidence),
        kind="security",
        message=text,
        path=_relative(filename, root),
        line=line,
        cwe=f"CWE-{cwe['id']}" if cwe.get("id") else "",
        tool=TOOL,
        snippet=_flagged_lines(str(issue.get("code") or ""), line_range),
        data={
            "test_id": test_id,
            "test_name": issue.get("test_name", ""),
            "bandit_severity": severity,
            "confidence": confidence,
            "more_info": issue.get("more_info", ""),
            "cwe_link": cwe.get("link", ""),
            "line_range": line_range,
            "col_offset": issue.get("col_offset"),
            "end_col_offset": issue.get("end_col_offset"),
            "code": issue.get("code", ""),
        },
    )


def _parse_error_finding(error: dict, index: int, root: Path | None) -> FindingData:
    """A file bandit skipped was not scanned at all: say so, so the gap is visible on the page."""
    if not isinstance(error, dict) or "filename" not in error:
        raise ReportError(f"bandit report: errors[{index}] has no 'filename'")
    path = _relative(str(error["filename"]), root)
    reason = str(error.get("reason", "unknown reason"))
    return FindingData(
        rule_id="bandit.parse-error",
        title=f"Bandit could not scan {path}",
        severity="info",
        kind="security",
        message=f"{reason}; this file was not checked by bandit (Python 2 or newer-Python syntax?)",
        path=path,
        tool=TOOL,
        data={"reason": reason},
    )


def _flagged_lines(code: str, line_range: list[int]) -> str:
    """The lines bandit flagged, out of its ``"6 def f():\\n7     call()"`` context block."""
    wanted = set(line_range)
    flagged = []
    for numbered in code.splitlines():
        match = _CODE_LINE.match(numbered)
        if match and int(match.group(1)) in wanted:
            flagged.append(match.group(2))
    return "\n".join(flagged).strip()


def _relative(filename: str, root: Path | None) -> str:
    """``./pkg/x.py`` or ``<root>/pkg/x.py`` -> ``pkg/x.py``."""
    path = filename.replace("\\", "/")
    if root is not None:
        prefix = root.as_posix().rstrip("/") + "/"
        path = path.removeprefix(prefix)
    return str(PurePosixPath(path)).removeprefix("./").lstrip("/") if path else ""


def _first_sentence(text: str, limit: int = 160) -> str:
    sentence = text.split(". ")[0].rstrip(".")
    return sentence if len(sentence) <= limit else sentence[: limit - 1] + "…"


def _directory(root: Path) -> Path:
    root = Path(root).resolve()
    if not root.is_dir():
        raise ToolError(f"{root} is not a directory: nothing to scan")
    return root


def _summary(report: dict, findings: list[FindingData], run: ToolRun) -> dict:
    metrics = report.get("metrics") or {}
    totals = metrics.get("_totals") or {}
    return {
        "files": len([name for name in metrics if name != "_totals"]),
        "loc": totals.get("loc", 0),
        "issues": len(report["results"]),
        "parse_errors": len(report["errors"]),
        "by_severity": dict(Counter(finding.severity for finding in findings)),
        "seconds": run.seconds,
        "stderr": tail(run.stderr, 1000),
    }
