"""plugin.toml: parsing (stdlib tomllib) and validation against the published JSON Schema.

The schema (submissions/schema/plugin-manifest.schema.json) is the contract plugin
authors write against; docs/manifest.md is generated from the same file.
"""

import json
import tomllib
from functools import cache
from pathlib import Path

from jsonschema import Draft202012Validator
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from governance.errors import ValidationFailed

MANIFEST_NAME = "plugin.toml"
MANIFEST_MAX_BYTES = 64 * 1024
SCHEMA_PATH = Path(__file__).parent / "schema" / "plugin-manifest.schema.json"


@cache
def manifest_validator() -> Draft202012Validator:
    schema = json.loads(SCHEMA_PATH.read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def parse_manifest(raw: bytes) -> dict:
    """Parse and validate; raise ValidationFailed(code="invalid_manifest") listing every problem."""
    try:
        manifest = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise _invalid([_error(MANIFEST_NAME, f"not valid UTF-8 TOML: {exc}")]) from None
    # TOML dates and times have no JSON form: keep them as ISO 8601 text. NUL cannot be
    # stored in PostgreSQL's jsonb, and no manifest needs it.
    as_json = json.dumps(manifest, default=lambda value: value.isoformat())
    if "\\u0000" in as_json:
        raise _invalid([_error(MANIFEST_NAME, "contains a NUL character")])
    manifest = json.loads(as_json)
    errors = [_schema_error(e) for e in sorted(manifest_validator().iter_errors(manifest), key=lambda e: e.json_path)]
    errors += _semantic_errors(manifest) if not errors else []
    if errors:
        raise _invalid(errors)
    return manifest


def _semantic_errors(manifest: dict) -> list[dict]:
    """What JSON Schema cannot say: PEP 440 versions and specifiers, safe doc paths."""
    errors = []
    plugin = manifest["plugin"]
    try:
        Version(plugin["version"])
    except InvalidVersion:
        errors.append(_error("plugin.version", f"{plugin['version']!r} is not a PEP 440 version"))
    try:
        SpecifierSet(plugin["host_api"])
    except InvalidSpecifier:
        errors.append(_error("plugin.host_api", f"{plugin['host_api']!r} is not a PEP 440 version specifier"))
    for key, path in manifest["docs"].items():
        if path.startswith("/") or ".." in path.split("/"):
            errors.append(_error(f"docs.{key}", f"{path!r} must be a relative path inside the archive"))
    for n, entry in enumerate(manifest.get("permissions", {}).get("filesystem", [])):
        root = entry.partition(":")[2]
        if ".." in root.split("/") or "//" in root or root != root.strip():
            errors.append(_error(f"permissions.filesystem[{n}]", f"{entry!r} must name a path without '..' or '//'"))
    return errors


def _schema_error(error) -> dict:
    path = list(error.absolute_path)
    if error.validator == "required":  # point at the missing key, not at its parent
        path.append(error.message.split("'")[1])
    field = ".".join(str(p) if isinstance(p, str) else f"[{p}]" for p in path).replace(".[", "[")
    return _error(field or MANIFEST_NAME, error.message)


def _error(field: str, message: str) -> dict:
    return {"field": field, "code": "invalid_manifest", "message": message}


def _invalid(errors: list[dict]) -> ValidationFailed:
    return ValidationFailed(f"{MANIFEST_NAME} is invalid.", code="invalid_manifest", errors=errors)
