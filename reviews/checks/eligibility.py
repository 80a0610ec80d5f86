"""Eligibility checks: is this archive a well-formed, compatible, licensed, documented,
compilable, pinned plugin? Each returns findings of kind ``eligibility``; any finding fails it."""

import ast
import warnings

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

from governance.errors import ValidationFailed
from governance.models import AllowedLicence, HostPlatform
from reviews.findings_data import FindingData
from submissions.manifest import MANIFEST_NAME, parse_manifest

from . import CheckContext, CheckOutcome, register

MIN_DOC_WORDS = 30


def _verdict(findings: list[FindingData], **summary) -> CheckOutcome:
    return CheckOutcome(passed=not findings, findings=findings, summary={"problems": len(findings), **summary})


def _problem(
    rule: str, title: str, message: str = "", *, path: str = "", line: int | None = None, severity: str = "high"
) -> FindingData:
    return FindingData(
        rule_id=rule,
        title=title,
        message=message,
        path=path,
        line=line,
        severity=severity,
        kind="eligibility",
        tool="warden",
    )


@register("eligibility.manifest", title="Manifest is valid")
def manifest_valid(ctx: CheckContext) -> CheckOutcome:
    try:
        parse_manifest((ctx.root / MANIFEST_NAME).read_bytes())
    except ValidationFailed as exc:
        return _verdict(
            [_problem("eligibility.manifest", f"{e['field']}: {e['message']}", path=MANIFEST_NAME) for e in exc.errors]
        )
    return _verdict([])


@register("eligibility.host_api", title="Host API is compatible")
def host_api_compatible(ctx: CheckContext) -> CheckOutcome:
    wanted = ctx.manifest["plugin"]["host_api"]
    host = HostPlatform.objects.filter(is_default=True).first()
    if host is None:
        return _verdict(
            [
                _problem(
                    "eligibility.host_api",
                    "No default host platform is configured",
                    "A platform admin must mark one host platform as the default.",
                )
            ]
        )
    try:
        compatible = Version(host.api_version) in SpecifierSet(wanted)
    except InvalidVersion:
        compatible = False
    findings = (
        []
        if compatible
        else [
            _problem(
                "eligibility.host_api",
                f"host_api {wanted!r} excludes {host.name}'s API {host.api_version}",
                path=MANIFEST_NAME,
            )
        ]
    )
    return _verdict(findings, host=host.name, host_api_version=host.api_version, wanted=wanted)


@register("eligibility.licence", title="Licence is allowed")
def licence_allowed(ctx: CheckContext) -> CheckOutcome:
    licence = ctx.manifest["plugin"]["license"]
    allowed = set(AllowedLicence.objects.values_list("spdx_id", flat=True))
    findings = (
        []
        if licence in allowed
        else [
            _problem(
                "eligibility.licence",
                f"Licence {licence!r} is not on the allow list",
                f"Allowed: {', '.join(sorted(allowed)) or 'none configured'}.",
                path=MANIFEST_NAME,
            )
        ]
    )
    return _verdict(findings, licence=licence)


@register("eligibility.docs", title="Documentation is complete")
def docs_complete(ctx: CheckContext) -> CheckOutcome:
    findings = []
    for key, relative in sorted(ctx.manifest["docs"].items()):
        path = (ctx.root / relative).resolve()
        if not path.is_relative_to(ctx.root.resolve()) or not path.is_file():
            findings.append(_problem("eligibility.docs", f"docs.{key}: {relative} is missing", path=relative))
        elif len(path.read_text(errors="replace").split()) < MIN_DOC_WORDS:
            findings.append(
                _problem(
                    "eligibility.docs",
                    f"docs.{key}: {relative} is too short",
                    f"Fewer than {MIN_DOC_WORDS} words.",
                    path=relative,
                    severity="medium",
                )
            )
    return _verdict(findings, documents=len(ctx.manifest["docs"]))


@register("eligibility.compile", title="Python files compile")
def python_compiles(ctx: CheckContext) -> CheckOutcome:
    """Parse, never execute: ``ast.parse`` of every .py file."""
    findings, files = [], sorted(ctx.root.rglob("*.py"))
    for path in files:
        relative = path.relative_to(ctx.root).as_posix()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", SyntaxWarning)
                ast.parse(path.read_bytes(), filename=relative)
        except (SyntaxError, ValueError) as exc:
            findings.append(
                _problem(
                    "eligibility.compile",
                    f"{relative} does not compile",
                    str(exc),
                    path=relative,
                    line=getattr(exc, "lineno", None),
                )
            )
    return _verdict(findings, files=len(files))


@register("eligibility.pinned", title="Dependencies are pinned")
def dependencies_pinned(ctx: CheckContext) -> CheckOutcome:
    findings = []
    for text in ctx.manifest["dependencies"]["requirements"]:
        try:
            specifiers = list(Requirement(text).specifier)
        except InvalidRequirement as exc:
            findings.append(_problem("eligibility.pinned", f"{text!r} is not a valid requirement", str(exc)))
            continue
        if len(specifiers) != 1 or specifiers[0].operator not in ("==", "===") or "*" in specifiers[0].version:
            findings.append(
                _problem(
                    "eligibility.pinned",
                    f"{text!r} is not pinned with ==",
                    "Pin an exact version so that what was reviewed is what runs.",
                )
            )
    return _verdict(findings, requirements=len(ctx.manifest["dependencies"]["requirements"]))
