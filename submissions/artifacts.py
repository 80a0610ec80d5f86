"""Reading an uploaded plugin archive: its digest, its size and its plugin.toml.

Nothing is extracted here: the manifest is read from the archive in memory, with a size
cap. Full, limit-checked extraction for the checks belongs to intake.
"""

import hashlib
import json
import tarfile
import tomllib
import zipfile
import zlib
from dataclasses import dataclass
from typing import IO

from django.conf import settings
from packaging.version import InvalidVersion, Version

from governance.errors import ValidationFailed

MANIFEST_NAME = "plugin.toml"
MANIFEST_MAX_BYTES = 64 * 1024
ARCHIVE_SUFFIXES = (".whl", ".zip", ".tar.gz", ".tgz")
TAR_MEMBER_SCAN_LIMIT = 20_000


@dataclass(frozen=True)
class ArtifactFacts:
    sha256: str
    size: int
    manifest: dict

    @property
    def name(self) -> str:
        return self.manifest["plugin"]["name"]

    @property
    def version(self) -> str:
        return self.manifest["plugin"]["version"]


def inspect_artifact(fileobj: IO[bytes], filename: str) -> ArtifactFacts:
    """Digest the upload and parse its manifest; raise ValidationFailed with every reason."""
    limit = settings.WARDEN_MAX_ARTIFACT_BYTES
    if getattr(fileobj, "size", 0) > limit:
        raise _invalid("archive_too_large", f"The archive is larger than {limit} bytes.", "artifact")
    lowered = filename.lower()
    if not lowered.endswith(ARCHIVE_SUFFIXES):
        raise _invalid("unsupported_archive", f"{filename!r} is not a .whl, .zip or .tar.gz archive.", "artifact")
    digest, size = hashlib.sha256(), 0
    fileobj.seek(0)
    for chunk in iter(lambda: fileobj.read(1024 * 1024), b""):
        digest.update(chunk)
        size += len(chunk)
    if size == 0:
        raise _invalid("empty_archive", "The archive is empty.", "artifact")
    fileobj.seek(0)
    raw = _read_manifest_bytes(fileobj, zip_like=lowered.endswith((".whl", ".zip")))
    fileobj.seek(0)
    return ArtifactFacts(sha256=digest.hexdigest(), size=size, manifest=_parse_manifest(raw))


def _read_manifest_bytes(fileobj: IO[bytes], *, zip_like: bool) -> bytes:
    try:
        return _zip_manifest(fileobj) if zip_like else _tar_manifest(fileobj)
    except ValidationFailed:
        raise
    except KeyError:
        raise _invalid("manifest_missing", f"The archive has no {MANIFEST_NAME} at its root.", MANIFEST_NAME) from None
    # zlib.error: corrupt deflate data; RuntimeError: encrypted members; NotImplementedError:
    # unsupported compression; ValueError: malformed headers. All mean "cannot be read".
    except (
        zipfile.BadZipFile,
        tarfile.TarError,
        EOFError,
        OSError,
        zlib.error,
        RuntimeError,
        NotImplementedError,
        ValueError,
    ) as exc:
        raise _invalid("corrupt_archive", f"The archive cannot be read: {exc}.", "artifact") from None


def _zip_manifest(fileobj: IO[bytes]) -> bytes:
    with zipfile.ZipFile(fileobj) as archive:
        info = archive.getinfo(MANIFEST_NAME)
        if info.file_size > MANIFEST_MAX_BYTES:
            raise _too_large()
        return archive.read(info)


def _tar_manifest(fileobj: IO[bytes]) -> bytes:
    # Walk the members one by one (getmember() would load every header first) and give up
    # after TAR_MEMBER_SCAN_LIMIT: a tar of millions of empty entries is not a plugin.
    with tarfile.open(fileobj=fileobj, mode="r:gz") as archive:
        for index, member in enumerate(archive):
            if index >= TAR_MEMBER_SCAN_LIMIT:
                break
            if member.name == MANIFEST_NAME:
                if not member.isfile() or member.size > MANIFEST_MAX_BYTES:
                    raise _too_large()
                return archive.extractfile(member).read()  # type: ignore[union-attr]
    raise KeyError(MANIFEST_NAME)


def _too_large() -> ValidationFailed:
    return _invalid(
        "manifest_too_large", f"{MANIFEST_NAME} must be a regular file under {MANIFEST_MAX_BYTES} bytes.", MANIFEST_NAME
    )


def _parse_manifest(raw: bytes) -> dict:
    try:
        manifest = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise _invalid("invalid_manifest", f"{MANIFEST_NAME} is not valid TOML: {exc}.", MANIFEST_NAME) from None
    plugin = manifest.get("plugin")
    errors = []
    if not isinstance(plugin, dict):
        errors.append({"field": "plugin", "message": "The [plugin] table is missing."})
        plugin = {}
    for key in ("name", "version", "entrypoint", "category"):
        value = plugin.get(key)
        if not isinstance(value, str) or not value:
            errors.append({"field": f"plugin.{key}", "message": "Required text value is missing."})
        elif len(value) > 64:
            errors.append({"field": f"plugin.{key}", "message": "Longer than 64 characters."})
    if isinstance(plugin.get("version"), str):
        try:
            Version(plugin["version"])
        except InvalidVersion:
            errors.append({"field": "plugin.version", "message": f"{plugin['version']!r} is not a PEP 440 version."})
    if errors:
        raise ValidationFailed(f"{MANIFEST_NAME} is invalid.", code="invalid_manifest", errors=errors)
    # TOML dates and times have no JSON form: keep them as ISO 8601 text. NUL cannot be
    # stored in PostgreSQL's jsonb, and no manifest needs it.
    as_json = json.dumps(manifest, default=lambda value: value.isoformat())
    if "\\u0000" in as_json:
        raise _invalid("invalid_manifest", f"{MANIFEST_NAME} contains a NUL character.", MANIFEST_NAME)
    return json.loads(as_json)


def _invalid(code: str, detail: str, where: str) -> ValidationFailed:
    return ValidationFailed(detail, code=code, errors=[{"field": where, "message": detail}])
