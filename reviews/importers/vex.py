"""Applying VEX statements to dependency findings from another source (pip-audit, an SBOM's own
vulnerabilities, the advisory matcher): the producer's verdict becomes the finding's initial triage.

A statement matches a finding when they share a vulnerability id (the finding's ``rule_id`` or
``data["aliases"]`` against the statement's id or aliases) and, if the statement names packages
(purls), the finding is about one of them (same type and name; same version when both give one).
A statement that names no package - it refers to the product as a whole, as CycloneDX's own
examples do - matches every finding with that id. A package-specific statement wins over a
product-wide one.
"""

import re
from dataclasses import replace

from reviews.findings_data import FindingData

from ._base import VexStatement

_PYPI_NAME = re.compile(r"[-_.]+")


def apply_vex(findings: list[FindingData], statements: list[VexStatement]) -> list[FindingData]:
    """The findings, each with ``triage``/``triage_reason`` set from the matching statement, if any."""
    if not statements:
        return list(findings)
    by_id: dict[str, list[VexStatement]] = {}
    for statement in statements:
        for vulnerability_id in (statement.vulnerability_id, *statement.aliases):
            by_id.setdefault(vulnerability_id.upper(), []).append(statement)
    return [_triaged(finding, by_id) for finding in findings]


def _triaged(finding: FindingData, by_id: dict[str, list[VexStatement]]) -> FindingData:
    aliases = finding.data.get("aliases") or []
    candidates: list[VexStatement] = []
    for vulnerability_id in (finding.rule_id, *aliases):
        candidates.extend(by_id.get(str(vulnerability_id).upper(), ()))
    if not candidates:
        return finding
    packages = {_package(purl) for purl in _finding_purls(finding)}
    specific = [s for s in candidates if s.purls and any(_matches(_package(p), packages) for p in s.purls)]
    general = [s for s in candidates if not s.purls]
    if not specific and not general:
        return finding
    chosen = (specific or general)[0]
    return replace(finding, triage=chosen.triage, triage_reason=chosen.reason)


def _finding_purls(finding: FindingData) -> list[str]:
    purls = list(finding.data.get("purls") or [])
    if finding.data.get("purl"):
        purls.append(finding.data["purl"])
    return purls


def _package(purl: str) -> tuple[str, str, str]:
    """(type, namespace/name, version) of a purl, qualifiers and subpath dropped; PyPI names
    normalised as pip does, since "PyYAML" and "pyyaml" are one package."""
    body = purl.partition("#")[0].partition("?")[0].removeprefix("pkg:").lstrip("/")
    kind, _, rest = body.partition("/")
    name, _, version = rest.rpartition("@") if "@" in rest else (rest, "", "")
    kind = kind.lower()
    if kind == "pypi":
        name = _PYPI_NAME.sub("-", name).lower()
    return kind, name, version


def _matches(wanted: tuple[str, str, str], packages: set[tuple[str, str, str]]) -> bool:
    return any(
        kind == wanted[0] and name == wanted[1] and (not version or not wanted[2] or version == wanted[2])
        for kind, name, version in packages
    )
