"""CycloneDX 1.4+ JSON (an SBOM, possibly carrying VEX) to components, VEX statements and findings.

Kept deliberately simple:

* ``components`` (nested ``components`` included, ``metadata.component`` - the product itself -
  excluded) become ``Component`` rows;
* a vulnerability whose ``analysis`` has a ``state`` is a VEX statement: the producer's verdict
  on a vulnerability, mapped to a Warden triage state and applied to findings from other
  sources (see ``reviews.importers.vex.apply_vex``), not a finding itself;
* any other vulnerability is a finding of kind "dependency", at the highest severity its
  ``ratings`` give (a rating's ``severity``, else its ``score``), "medium" when unrated.
"""

from dataclasses import replace
from urllib.parse import unquote

from reviews.findings_data import SEVERITIES, FindingData, ReportError

from ._base import (
    Component,
    ParsedReport,
    VexStatement,
    clip_title,
    expect,
    optional_dict,
    optional_list,
    optional_str,
    purl_ecosystem,
    severity_from_score,
    show,
    str_list,
    summarise,
)

# analysis.state (CycloneDX 1.4-1.6 impactAnalysisState) -> Warden triage state
VEX_TRIAGE = {
    "not_affected": "false_positive",
    "false_positive": "false_positive",
    "resolved": "fixed",
    "resolved_with_pedigree": "fixed",
    "exploitable": "open",
    "in_triage": "open",
}
# ratings[].severity -> Warden severity; "none" and "unknown" say nothing and are skipped
_RATING_SEVERITY = {"critical": "critical", "high": "high", "medium": "medium", "low": "low", "info": "info"}
_NO_RATING = ("none", "unknown")
MIN_SPEC = (1, 4)


def parse(document: object) -> ParsedReport:
    """A CycloneDX JSON BOM to components, VEX statements and dependency findings."""
    expect(document, dict, "the report", "a JSON object (a CycloneDX BOM)")
    assert isinstance(document, dict)
    _check_version(document)
    metadata = optional_dict(document, "metadata", "")
    tool, tool_version = _tool(metadata)
    components, refs = _components(document)
    product = metadata.get("component")
    if product is not None:
        expect(product, dict, "metadata.component", "an object")
        product_ref = optional_str(product, "bom-ref", "metadata.component")
        refs.setdefault(product_ref, optional_str(product, "purl", "metadata.component"))
    refs.pop("", None)
    vex, findings = _vulnerabilities(document, refs, tool)
    ecosystems: dict[str, int] = {}
    for component in components:
        ecosystems[component.ecosystem] = ecosystems.get(component.ecosystem, 0) + 1
    by_triage: dict[str, int] = {}
    for statement in vex:
        by_triage[statement.triage] = by_triage.get(statement.triage, 0) + 1
    summary = summarise(
        findings,
        spec_version=document["specVersion"],
        components=len(components),
        ecosystems=ecosystems,
        vex=len(vex),
        vex_by_triage=by_triage,
    )
    return ParsedReport("cyclonedx", tool, tool_version, findings, components, vex, summary)


def _check_version(document: dict) -> None:
    if document.get("bomFormat") != "CycloneDX":
        raise ReportError(f"bomFormat must be 'CycloneDX', not {show(document.get('bomFormat'))}")
    spec = document.get("specVersion")
    if type(spec) is not str:
        raise ReportError(f"specVersion must be a string such as '1.5', not {show(spec)}")
    major, _, minor = spec.partition(".")
    if not (major.isdigit() and minor.isdigit()):
        raise ReportError(f"specVersion {show(spec)} is not a CycloneDX version such as '1.5'")
    if (int(major), int(minor)) < MIN_SPEC or int(major) != 1:
        raise ReportError(f"specVersion {spec} is not supported (1.4 or newer)")


def _tool(metadata: dict) -> tuple[str, str]:
    """The first named tool that made the BOM: ``metadata.tools`` is an array up to 1.4 and an
    object with a ``components`` array from 1.5."""
    if isinstance(metadata.get("tools"), dict):
        where = "metadata.tools.components"
        entries = optional_list(metadata["tools"], "components", "metadata.tools")
    else:
        where = "metadata.tools"
        entries = optional_list(metadata, "tools", "metadata", "an array, or an object with components")
    for index, entry in enumerate(entries):
        expect(entry, dict, f"{where}[{index}]", "an object")
        name = optional_str(entry, "name", f"{where}[{index}]")
        if name:
            return name, optional_str(entry, "version", f"{where}[{index}]")
    return "cyclonedx", ""


def _components(document: dict) -> tuple[list[Component], dict[str, str]]:
    """Every component, depth first with nested ones after their parent; and bom-ref -> purl
    for resolving VEX ``affects`` references. Iterative: nesting depth is the sender's choice."""
    top = optional_list(document, "components", "")
    components: list[Component] = []
    refs: dict[str, str] = {}
    stack = [(f"components[{index}]", raw) for index, raw in reversed(list(enumerate(top)))]
    while stack:
        where, raw = stack.pop()
        expect(raw, dict, where, "an object")
        name = raw.get("name")
        if type(name) is not str or not name:
            raise ReportError(f"{where}.name must be a non-empty string, not {show(name)}")
        purl = optional_str(raw, "purl", where)
        component = Component(
            name=name,
            version=optional_str(raw, "version", where),
            purl=purl,
            ecosystem=purl_ecosystem(purl),
            bom_ref=optional_str(raw, "bom-ref", where),
            type=optional_str(raw, "type", where),
        )
        components.append(component)
        if component.bom_ref:
            refs.setdefault(component.bom_ref, purl)
        children = optional_list(raw, "components", where)
        stack.extend((f"{where}.components[{index}]", child) for index, child in reversed(list(enumerate(children))))
    return components, refs


def _vulnerabilities(document: dict, refs: dict[str, str], tool: str) -> tuple[list[VexStatement], list[FindingData]]:
    vulnerabilities = optional_list(document, "vulnerabilities", "")
    vex: list[VexStatement] = []
    findings: list[FindingData] = []
    for index, raw in enumerate(vulnerabilities):
        where = f"vulnerabilities[{index}]"
        expect(raw, dict, where, "an object")
        vulnerability_id = raw.get("id")
        if type(vulnerability_id) is not str or not vulnerability_id:
            raise ReportError(f"{where}.id must be a non-empty string, not {show(vulnerability_id)}")
        affected = _affects(raw, where)
        purls = tuple(dict.fromkeys(purl for purl in (_resolve(ref, refs) for ref in affected) if purl))
        analysis = raw.get("analysis")
        if analysis is not None:
            expect(analysis, dict, f"{where}.analysis", "an object")
        if analysis and analysis.get("state") is not None:
            statement = _statement(vulnerability_id, analysis, affected, purls, f"{where}.analysis")
            vex.append(replace(statement, aliases=tuple(_reference_ids(raw, where))))
        else:
            findings.append(_finding(vulnerability_id, raw, affected, purls, tool, where))
    return vex, findings


def _affects(raw: dict, where: str) -> tuple[str, ...]:
    affects = optional_list(raw, "affects", where)
    refs = []
    for index, entry in enumerate(affects):
        expect(entry, dict, f"{where}.affects[{index}]", "an object")
        ref = entry.get("ref")
        if type(ref) is not str or not ref:
            raise ReportError(f"{where}.affects[{index}].ref must be a non-empty string, not {show(ref)}")
        refs.append(ref)
    return tuple(dict.fromkeys(refs))


def _resolve(ref: str, refs: dict[str, str]) -> str:
    """A purl for an ``affects`` reference: a bom-ref of this BOM, a purl used as a ref, or a
    BOM-Link (``urn:cdx:<serial>/<version>#<bom-ref>``) whose fragment is one of those."""
    if ref.startswith("urn:cdx:") and "#" in ref:
        ref = unquote(ref.partition("#")[2])
    if ref in refs:
        return refs[ref]
    return ref if ref.startswith("pkg:") else ""


def _statement(
    vulnerability_id: str, analysis: dict, refs: tuple[str, ...], purls: tuple[str, ...], where: str
) -> VexStatement:
    state = analysis["state"]
    if type(state) is not str or state not in VEX_TRIAGE:
        raise ReportError(f"{where}.state: {show(state)} is not a CycloneDX analysis state ({', '.join(VEX_TRIAGE)})")
    response = analysis.get("response")
    if isinstance(response, str):  # seen in CycloneDX's own examples, though the schema says array
        response = [response]
        analysis = {**analysis, "response": response}
    return VexStatement(
        vulnerability_id=vulnerability_id,
        triage=VEX_TRIAGE[state],
        state=state,
        justification=optional_str(analysis, "justification", where),
        detail=optional_str(analysis, "detail", where),
        response=tuple(str_list(analysis, "response", where)),
        refs=refs,
        purls=purls,
    )


def _finding(
    vulnerability_id: str, raw: dict, refs: tuple[str, ...], purls: tuple[str, ...], tool: str, where: str
) -> FindingData:
    description = optional_str(raw, "description", where)
    detail = optional_str(raw, "detail", where)
    source = optional_dict(raw, "source", where)
    data: dict = {"affects": list(refs), "purls": list(purls)}
    for key in ("recommendation",):
        value = optional_str(raw, key, where)
        if value:
            data[key] = value
    source_name = optional_str(source, "name", f"{where}.source")
    if source_name:
        data["source"] = source_name
    aliases = _reference_ids(raw, where)
    if aliases:
        data["aliases"] = aliases
    title = f"{vulnerability_id} in {', '.join(purls or refs)}" if (purls or refs) else vulnerability_id
    return FindingData(
        rule_id=vulnerability_id,
        title=clip_title(title),
        severity=_highest_rating(raw, where),
        kind="dependency",
        message=description or detail,
        cwe=_first_cwe(raw, where),
        tool=tool,
        data=data,
    )


def _highest_rating(raw: dict, where: str) -> str:
    ratings = optional_list(raw, "ratings", where)
    found: list[str] = []
    for index, rating in enumerate(ratings):
        at = f"{where}.ratings[{index}]"
        expect(rating, dict, at, "an object")
        severity = rating.get("severity")
        if severity is not None:
            if type(severity) is not str or (severity not in _RATING_SEVERITY and severity not in _NO_RATING):
                raise ReportError(f"{at}.severity: {show(severity)} is not a CycloneDX severity")
            if severity in _RATING_SEVERITY:
                found.append(_RATING_SEVERITY[severity])
        elif rating.get("score") is not None:
            found.append(severity_from_score(rating["score"], f"{at}.score"))
    return min(found, key=SEVERITIES.index) if found else "medium"


def _first_cwe(raw: dict, where: str) -> str:
    cwes = optional_list(raw, "cwes", where, "an array of CWE numbers")
    for index, cwe in enumerate(cwes):
        if type(cwe) is not int or cwe < 1:
            raise ReportError(f"{where}.cwes[{index}] must be a CWE number such as 79, not {show(cwe)}")
    return f"CWE-{cwes[0]}" if cwes else ""


def _reference_ids(raw: dict, where: str) -> list[str]:
    """Other ids for the same vulnerability (``references[].id``: GHSA, SNYK, ...), for matching."""
    references = optional_list(raw, "references", where)
    ids = []
    for index, reference in enumerate(references):
        expect(reference, dict, f"{where}.references[{index}]", "an object")
        reference_id = optional_str(reference, "id", f"{where}.references[{index}]")
        if reference_id:
            ids.append(reference_id)
    return ids


def looks_like(document: object) -> bool:
    """Whether a decoded document is CycloneDX, to tell a CI author they posted the wrong format."""
    if not isinstance(document, dict):
        return False
    schema = document.get("$schema")
    return (
        "bomFormat" in document
        or "specVersion" in document
        or (isinstance(schema, str) and "cyclonedx" in schema.lower())
    )
