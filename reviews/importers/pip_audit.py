"""pip-audit's JSON (``pip-audit -f json``) to dependency findings.

The shape, as pip-audit 2.x writes it (``pip_audit/_format/json.py``)::

    {"dependencies": [{"name": "requests", "version": "2.32.3",
                       "vulns": [{"id": "CVE-2024-47081", "fix_versions": ["2.32.4"],
                                  "aliases": ["GHSA-9hjg-9r4m-mvj7"], "description": "..."}]},
                      {"name": "idna", "skip_reason": "Dependency not found on PyPI ..."}],
     "fixes": [...]}

``aliases`` and ``description`` are present only when pip-audit was asked for them (its default
"auto" does so for JSON). The report carries no severity, so every vulnerability is "medium"
unless a vulnerability has a ``severity`` Warden knows. A skipped dependency was *not audited*:
the summary lists them, and a report whose every dependency was skipped (pip-audit could not reach
its vulnerability service) says ``audited: 0`` - the integrator must not read that as clean.
"""

from reviews.findings_data import SEVERITIES, FindingData, ReportError

from ._base import ParsedReport, clip_title, expect, optional_list, optional_str, show, str_list, summarise

TOOL = "pip-audit"


def parse(document: object) -> ParsedReport:
    """pip-audit JSON to one finding per (dependency, vulnerability)."""
    if isinstance(document, list):
        raise ReportError("the report must be an object with a 'dependencies' array (pip-audit -f json), not an array")
    expect(document, dict, "the report", "a JSON object (pip-audit -f json)")
    assert isinstance(document, dict)
    if "dependencies" not in document:
        raise ReportError('dependencies is missing: pip-audit -f json writes {"dependencies": [...], "fixes": [...]}')
    dependencies = document["dependencies"]
    expect(dependencies, list, "dependencies", "an array")
    findings: list[FindingData] = []
    skipped: list[dict[str, str]] = []
    for index, raw in enumerate(dependencies):
        where = f"dependencies[{index}]"
        expect(raw, dict, where, "an object")
        name = raw.get("name")
        if type(name) is not str or not name:
            raise ReportError(f"{where}.name must be a non-empty string, not {show(name)}")
        if "skip_reason" in raw:
            skipped.append({"name": name, "reason": optional_str(raw, "skip_reason", where)})
            continue
        version = raw.get("version")
        if type(version) is not str or not version:
            raise ReportError(f"{where}.version must be a non-empty string, not {show(version)}")
        vulns = optional_list(raw, "vulns", where)
        findings.extend(_finding(name, version, vuln, f"{where}.vulns[{number}]") for number, vuln in enumerate(vulns))
    fixes = optional_list(document, "fixes", "")
    summary = summarise(
        findings,
        dependencies=len(dependencies),
        audited=len(dependencies) - len(skipped),
        skipped=skipped,
        vulnerable_packages=len({(finding.data["package"], finding.data["version"]) for finding in findings}),
        fixes=len(fixes),
    )
    return ParsedReport("pip-audit", TOOL, "", findings, summary=summary)


def _finding(package: str, version: str, vuln: object, where: str) -> FindingData:
    expect(vuln, dict, where, "an object")
    assert isinstance(vuln, dict)
    vuln_id = vuln.get("id")
    if type(vuln_id) is not str or not vuln_id:
        raise ReportError(f"{where}.id must be a non-empty string, not {show(vuln_id)}")
    description = optional_str(vuln, "description", where)
    data = {
        "package": package,
        "version": version,
        "purl": f"pkg:pypi/{package}@{version}",
        "aliases": str_list(vuln, "aliases", where),
        "fix_versions": str_list(vuln, "fix_versions", where),
    }
    fixed = f" (fixed in {', '.join(data['fix_versions'])})" if data["fix_versions"] else ""
    return FindingData(
        rule_id=vuln_id,
        title=clip_title(f"{vuln_id} in {package} {version}{fixed}"),
        severity=_severity(vuln, where),
        kind="dependency",
        message=description,
        tool=TOOL,
        data=data,
    )


def _severity(vuln: dict, where: str) -> str:
    stated = vuln.get("severity")
    if stated is None:
        return "medium"
    if type(stated) is not str or stated.lower() not in SEVERITIES:
        raise ReportError(f"{where}.severity: {show(stated)} is not one of {', '.join(SEVERITIES)}")
    return stated.lower()


def looks_like(document: object) -> bool:
    """Whether a decoded document is pip-audit JSON (CycloneDX also has ``dependencies``)."""
    return (
        isinstance(document, dict)
        and isinstance(document.get("dependencies"), list)
        and "fixes" in document
        and "bomFormat" not in document
    )
