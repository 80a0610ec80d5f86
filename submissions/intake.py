"""Reading untrusted plugin archives (.whl, .zip, .tar.gz) without trusting them.

One walk over the members serves both uses: at upload it checks everything and keeps
only plugin.toml (nothing is written), and in a worker it extracts into a private
directory. Sizes are enforced on the bytes actually decompressed, not on what headers
claim, so a lying zip bomb stops at the limit.
"""

import hashlib
import stat
import tarfile
import unicodedata
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from django.conf import settings

from governance.errors import ValidationFailed

from .manifest import MANIFEST_MAX_BYTES, MANIFEST_NAME, parse_manifest

ZIP_SUFFIXES = (".whl", ".zip")
TAR_SUFFIXES = (".tar.gz", ".tgz")
CHUNK = 1024 * 1024
# A small file of repeated bytes compresses far beyond any sane ratio; only judge the
# ratio once there is enough data for it to mean something.
RATIO_FLOOR_BYTES = 1024 * 1024


@dataclass(frozen=True)
class ArchiveLimits:
    max_total_bytes: int
    max_files: int
    max_file_bytes: int
    max_ratio: int
    max_depth: int

    @classmethod
    def from_settings(cls) -> "ArchiveLimits":
        return cls(**settings.WARDEN_ARCHIVE_LIMITS)


@dataclass(frozen=True)
class ArtifactFacts:
    sha256: str
    size: int
    manifest: dict
    file_count: int
    unpacked_bytes: int

    @property
    def name(self) -> str:
        return self.manifest["plugin"]["name"]

    @property
    def version(self) -> str:
        return self.manifest["plugin"]["version"]


@dataclass
class _Entry:
    name: str
    kind: str  # file, dir, symlink, hardlink, device, other
    declared_size: int
    compressed_size: int | None
    open: object  # () -> IO[bytes]
    utf8: bool = True


@dataclass
class _Walk:
    limits: ArchiveLimits
    problems: list[dict] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)
    files: int = 0
    total: int = 0
    manifest: bytes | None = None

    def refuse(self, where: str, code: str, message: str) -> None:
        self.problems.append({"field": where, "code": code, "message": message})


def inspect_artifact(fileobj: IO[bytes], filename: str, *, limits: ArchiveLimits | None = None) -> ArtifactFacts:
    """Check an upload completely and return its digest and manifest, or raise
    ValidationFailed with every reason (``invalid_archive``, ``invalid_manifest``, ...)."""
    limit = settings.WARDEN_MAX_ARTIFACT_BYTES
    if getattr(fileobj, "size", 0) > limit:
        raise _refused("archive_too_large", f"The archive is larger than {limit} bytes.")
    if not filename.lower().endswith(ZIP_SUFFIXES + TAR_SUFFIXES):
        raise _refused("unsupported_archive", f"{filename!r} is not a .whl, .zip or .tar.gz archive.")
    sha256, size = _digest(fileobj)
    if size == 0:
        raise _refused("empty_archive", "The archive is empty.")
    walk = _walk(fileobj, filename, size, limits or ArchiveLimits.from_settings(), dest=None)
    return ArtifactFacts(
        sha256=sha256,
        size=size,
        manifest=parse_manifest(walk.manifest or b""),
        file_count=walk.files,
        unpacked_bytes=walk.total,
    )


def extract_artifact(fileobj: IO[bytes], filename: str, dest: Path, *, limits: ArchiveLimits | None = None) -> None:
    """Unpack into ``dest`` (an empty private directory) under the same checks as upload."""
    size = _digest(fileobj)[1]
    _walk(fileobj, filename, size, limits or ArchiveLimits.from_settings(), dest=dest)


def _digest(fileobj: IO[bytes]) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    fileobj.seek(0)
    for chunk in iter(lambda: fileobj.read(CHUNK), b""):
        digest.update(chunk)
        size += len(chunk)
    fileobj.seek(0)
    return digest.hexdigest(), size


def _walk(fileobj: IO[bytes], filename: str, size: int, limits: ArchiveLimits, *, dest: Path | None) -> _Walk:
    walk = _Walk(limits)
    entries = _zip_entries(fileobj) if filename.lower().endswith(ZIP_SUFFIXES) else _tar_entries(fileobj)
    try:
        for entry in entries:
            _accept(walk, entry, dest)
            if _over_limits(walk, size):
                break
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
        raise _refused("corrupt_archive", f"The archive cannot be read: {exc}.") from None
    finally:
        fileobj.seek(0)
    if walk.files == 0 and not walk.problems:
        walk.refuse("archive", "empty_archive", "The archive contains no files.")
    if walk.manifest is None and not walk.problems:
        walk.refuse(MANIFEST_NAME, "manifest_missing", f"The archive has no {MANIFEST_NAME} at its root.")
    if walk.problems:
        raise ValidationFailed("The archive was refused.", code="invalid_archive", errors=walk.problems)
    return walk


def _over_limits(walk: _Walk, archive_size: int) -> bool:
    limits = walk.limits
    if walk.files > limits.max_files:
        walk.refuse("archive", "too_many_files", f"The archive holds more than {limits.max_files} files.")
        return True
    if walk.total > limits.max_total_bytes:
        walk.refuse(
            "archive", "too_large_unpacked", f"The archive unpacks to more than {limits.max_total_bytes} bytes."
        )
        return True
    if walk.total > RATIO_FLOOR_BYTES and walk.total > archive_size * limits.max_ratio:
        walk.refuse(
            "archive",
            "compression_ratio",
            f"The archive unpacks to more than {limits.max_ratio} times its size (a zip bomb?).",
        )
        return True
    return False


def _accept(walk: _Walk, entry: _Entry, dest: Path | None) -> None:
    """Check one member, and write it to ``dest`` when there is one."""
    problem = _name_problem(entry, walk.limits)
    if problem:
        walk.refuse(entry.name, *problem)
        return
    if entry.kind not in ("file", "dir"):
        walk.refuse(entry.name, f"{entry.kind}_refused", f"{entry.kind.capitalize()}s are not allowed.")
        return
    key = unicodedata.normalize("NFC", entry.name.rstrip("/")).casefold()
    if key in walk.seen:
        walk.refuse(entry.name, "duplicate_name", "Another member has the same name.")
        return
    walk.seen.add(key)
    if entry.kind == "dir":
        if dest is not None:
            (dest / entry.name).mkdir(parents=True, exist_ok=True)
        return
    walk.files += 1
    _copy(walk, entry, dest)


def _copy(walk: _Walk, entry: _Entry, dest: Path | None) -> bool:
    limits = walk.limits
    if entry.declared_size > limits.max_file_bytes:
        walk.refuse(entry.name, "file_too_large", f"Larger than {limits.max_file_bytes} bytes.")
        return False
    if (
        entry.compressed_size
        and entry.declared_size > RATIO_FLOOR_BYTES
        and entry.declared_size > entry.compressed_size * limits.max_ratio
    ):
        walk.refuse(entry.name, "compression_ratio", f"Compressed more than {limits.max_ratio} times (a zip bomb?).")
        return False
    keep = entry.name == MANIFEST_NAME
    kept, written = bytearray(), 0
    target = None
    if dest is not None:
        path = dest / entry.name
        path.parent.mkdir(parents=True, exist_ok=True)
        target = path.open("xb")
    try:
        with entry.open() as source:  # type: ignore[operator]
            for chunk in iter(lambda: source.read(CHUNK), b""):
                written += len(chunk)
                if written > limits.max_file_bytes or walk.total + written > limits.max_total_bytes:
                    walk.total += written
                    walk.refuse(entry.name, "file_too_large", "Unpacks to more than the limits allow.")
                    return False
                if target:
                    target.write(chunk)
                if keep and len(kept) <= MANIFEST_MAX_BYTES:
                    kept += chunk
    finally:
        if target:
            target.close()
    walk.total += written
    if keep:
        if len(kept) > MANIFEST_MAX_BYTES:
            walk.refuse(entry.name, "manifest_too_large", f"{MANIFEST_NAME} is over {MANIFEST_MAX_BYTES} bytes.")
            return False
        walk.manifest = bytes(kept)
    return True


def _name_problem(entry: _Entry, limits: ArchiveLimits) -> tuple[str, str] | None:
    name = entry.name
    parts = name.replace("\\", "/").rstrip("/").split("/")
    if not entry.utf8 or any("\udc80" <= ch <= "\udcff" for ch in name):
        return "non_utf8_name", "The name is not UTF-8."
    if not name or any(ord(ch) < 32 for ch in name):
        return "bad_name", "The name is empty or holds control characters."
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return "absolute_path", "Absolute paths and drive letters are not allowed."
    if ".." in parts:
        return "path_traversal", "'..' in a path is not allowed."
    if "\\" in name:
        return "bad_name", "Backslashes in names are not allowed."
    if len(parts) > limits.max_depth:
        return "too_deep", f"Nested deeper than {limits.max_depth} directories."
    return None


def _zip_entries(fileobj: IO[bytes]) -> Iterator[_Entry]:
    with zipfile.ZipFile(fileobj) as archive:
        for info in archive.infolist():
            mode = info.external_attr >> 16
            kind = "dir" if info.is_dir() else "symlink" if stat.S_ISLNK(mode) else "file"
            if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
                kind = "device"
            yield _Entry(
                name=info.filename,
                kind=kind,
                declared_size=info.file_size,
                compressed_size=info.compress_size,
                open=lambda info=info: archive.open(info),
                utf8=bool(info.flag_bits & 0x800) or info.filename.isascii(),
            )


def _tar_entries(fileobj: IO[bytes]) -> Iterator[_Entry]:
    with tarfile.open(fileobj=fileobj, mode="r:gz") as archive:
        for member in archive:
            kind = (
                "file"
                if member.isreg()
                else "dir"
                if member.isdir()
                else "symlink"
                if member.issym()
                else "hardlink"
                if member.islnk()
                else "device"
                if member.isdev()
                else "other"
            )
            yield _Entry(
                name=member.name,
                kind=kind,
                declared_size=member.size,
                compressed_size=None,
                open=lambda member=member: archive.extractfile(member),
            )
            archive.members.clear()  # type: ignore[attr-defined]  # keeps memory flat on huge archives


def _refused(code: str, detail: str) -> ValidationFailed:
    return ValidationFailed(detail, code=code, errors=[{"field": "artifact", "code": code, "message": detail}])
