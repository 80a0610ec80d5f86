"""Eligibility checks: is this archive a well-formed, compatible, licensed, documented,
compilable, pinned plugin? Each returns findings of kind ``eligibility``; any finding fails it,
except native code the manifest declares, which is flagged for a human reviewer."""

import ast
import importlib.util
import warnings
from pathlib import Path

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


def host_api_fits(*, wanted: str, api_version: str) -> bool:
    """Whether a manifest's ``host_api`` (a PEP 440 specifier) admits a host platform's API
    version; deployments ask it of their environment's platform too."""
    try:
        return Version(api_version) in SpecifierSet(wanted)
    except InvalidVersion:
        return False


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
    findings = (
        []
        if host_api_fits(wanted=wanted, api_version=host.api_version)
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


# Importable files no scanner reads: Python's import system (or ``ctypes``) would load them, but
# bandit, GuardDog and ``ast.parse`` see only source. Matched by name and by content, so a
# renamed file is caught too.
BYTECODE_SUFFIXES = (".pyc", ".pyo")
NATIVE_SUFFIXES = (".so", ".pyd", ".dylib", ".dll")
ARCHIVE_SUFFIXES = (".zip", ".egg", ".whl", ".pyz", ".jar")
NATIVE_MAGIC = (b"\x7fELF", b"\xfe\xed\xfa\xce", b"\xfe\xed\xfa\xcf", b"\xce\xfa\xed\xfe", b"\xcf\xfa\xed\xfe")
ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
# A zip is read from its end: its end-of-central-directory record sits in the last 22 bytes plus
# at most a 64 KiB comment, whatever comes before it (zipimport loads a zip appended to a README).
ZIP_END = b"PK\x05\x06"
ZIP_TAIL = 64 * 1024 + 22


def _zip_tail(handle) -> bool:
    """The file ends with a zip archive (its end-of-central-directory record is in its tail)."""
    size = handle.seek(0, 2)
    handle.seek(max(0, size - ZIP_TAIL))
    return ZIP_END in handle.read(ZIP_TAIL)


def unread_code(root: Path) -> dict[str, list[str]]:
    """Every file under ``root`` that Python could import or load but no scanner reads, by
    reason: ``bytecode`` (.pyc/.pyo, anything in a ``__pycache__``), ``native`` (shared
    libraries), ``archive`` (zip, egg, wheel: importable once on ``sys.path`` or by
    ``zipimport``, under any name, appended to any file), ``pth``."""
    found: dict[str, list[str]] = {"bytecode": [], "native": [], "archive": [], "pth": []}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if path.is_dir() or path.is_symlink():
            if path.name == "__pycache__" and path.is_dir():
                found["bytecode"].append(relative + "/")
            continue
        if "__pycache__" in path.parts[len(root.parts) :]:
            continue  # reported as its directory
        name = path.name.lower()
        try:
            with path.open("rb") as handle:
                head = handle.read(16)
                appended_zip = _zip_tail(handle)
        except OSError:
            head, appended_zip = b"", False
        if name.endswith(BYTECODE_SUFFIXES) or head[:4] == importlib.util.MAGIC_NUMBER:
            found["bytecode"].append(relative)
        elif name.endswith(NATIVE_SUFFIXES) or ".so." in name or head.startswith(NATIVE_MAGIC):
            found["native"].append(relative)
        elif name.endswith(ARCHIVE_SUFFIXES) or head.startswith(ZIP_MAGIC) or appended_zip:
            found["archive"].append(relative)
        elif name.endswith(".pth"):
            found["pth"].append(relative)
    return found


def native_declared(manifest: dict) -> bool:
    """plugin.toml declares native code with a ``[native]`` table (``reason = "..."``)."""
    return bool(manifest.get("native"))


UNREAD_TEXT = {
    "bytecode": ("eligibility.bytecode", "Compiled bytecode no scanner reads"),
    "native": ("eligibility.native-code", "Native code no scanner reads"),
    "archive": ("eligibility.nested-archive", "An importable archive inside the archive"),
    "pth": ("eligibility.pth-file", "A .pth file (run at interpreter start)"),
}


def unread_code_findings(root: Path, manifest: dict) -> list[FindingData]:
    """Critical findings for importable files no scanner reads; declared native code is a
    medium finding for a human reviewer with the file list instead."""
    findings = []
    for reason, files in unread_code(root).items():
        if not files:
            continue
        rule, title = UNREAD_TEXT[reason]
        listed = ", ".join(files[:20]) + (f" and {len(files) - 20} more" if len(files) > 20 else "")
        if reason == "native" and native_declared(manifest):
            findings.append(
                FindingData(
                    rule_id="eligibility.native-code-review",
                    title=f"Declared native code for human review: {listed}"[:300],
                    message="plugin.toml declares native code ([native]). No scanner reads it and the "
                    "sandbox's Python-level capture cannot see inside it: a reviewer must review these "
                    f"files (and how they were built) before passing the stage: {listed}.",
                    path=files[0],
                    severity="medium",
                    kind="eligibility",
                    tool="warden",
                    snippet="native-code-review:" + ",".join(files)[:400],
                    data={"files": files},
                )
            )
            continue
        findings.append(
            FindingData(
                rule_id=rule,
                title=f"{title}: {listed}"[:300],
                message="Python would load this but bandit, GuardDog and the compile check read only "
                ".py source: nothing may run that was not read. Ship source only (no __pycache__, "
                ".pyc, .pth or nested archives); native code must be declared in plugin.toml's "
                f"[native] table for human review. Files: {listed}.",
                path=files[0],
                severity="critical",
                kind="eligibility",
                tool="warden",
                snippet=f"{reason}:" + ",".join(files)[:400],
                data={"files": files, "reason": reason},
            )
        )
    return findings


@register("eligibility.compile", title="Python files compile")
def python_compiles(ctx: CheckContext) -> CheckOutcome:
    """Parse, never execute: ``ast.parse`` of every .py file; refuse every importable file that
    is not source (bytecode, native code, nested archives, .pth files)."""
    unread = unread_code_findings(ctx.root, ctx.manifest)
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
    blocking = [f for f in unread if f.severity != "medium"]
    return CheckOutcome(
        passed=not findings and not blocking,
        findings=[*findings, *unread],
        summary={"problems": len(findings) + len(blocking), "files": len(files), "unread": len(unread)},
    )


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
