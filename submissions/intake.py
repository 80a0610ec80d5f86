"""Reading untrusted plugin archives (.whl, .zip, .tar.gz) without trusting them.

One walk over the members serves both uses: at upload it checks everything and keeps
only plugin.toml (nothing is written), and in a worker it extracts into a private
directory. Sizes are enforced on the bytes actually decompressed, not on what headers
claim, so a lying zip bomb stops at the limit.
"""

import gzip
import hashlib
import posixpath
import stat
import tarfile
import unicodedata
import zipfile
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
MAX_NAME_LENGTH = 1024
MAX_PROBLEMS = 100
# Tar headers (512 bytes a member, plus long names and PAX records) come on top of file data.
TAR_HEADER_ALLOWANCE = 16 * 1024 * 1024


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
    files: set[str] = field(default_factory=set)  # normalised, casefolded paths of files
    dirs: set[str] = field(default_factory=set)  # and of every directory they imply
    members: int = 0
    total: int = 0
    manifest: bytes | None = None

    def refuse(self, where: str, code: str, message: str) -> None:
        self.problems.append({"field": where[:300], "code": code, "message": message})


class _BudgetExceeded(Exception):
    """More bytes were decompressed than any acceptable archive needs."""


class _BudgetReader:
    """A read-only stream that stops after ``budget`` bytes. tarfile reads GNU long names
    and PAX headers into memory whole, before any member is seen; this bounds that too."""

    def __init__(self, raw: gzip.GzipFile, budget: int):
        self.raw, self.left = raw, budget

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0 or size > self.left:
            size = self.left + 1
        data = self.raw.read(size)
        self.left -= len(data)
        if self.left < 0:
            raise _BudgetExceeded
        return data


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
        file_count=len(walk.files),
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
    zip_like = filename.lower().endswith(ZIP_SUFFIXES)
    try:
        entries = _zip_entries(fileobj, limits) if zip_like else _tar_entries(fileobj, limits)
        for entry in entries:
            _accept(walk, entry, dest)
            if _over_limits(walk, size):
                break
    except ValidationFailed:
        raise
    except _BudgetExceeded:
        walk.refuse(
            "archive", "too_large_unpacked", f"The archive unpacks to more than {limits.max_total_bytes} bytes."
        )
    except Exception as exc:  # hostile bytes can break the readers in any way: all mean "cannot be read"
        raise _refused("corrupt_archive", f"The archive cannot be read: {type(exc).__name__}: {exc}"[:500]) from None
    finally:
        fileobj.seek(0)
    if not walk.files and not walk.problems:
        walk.refuse("archive", "empty_archive", "The archive contains no files.")
    if walk.manifest is None and not walk.problems:
        walk.refuse(MANIFEST_NAME, "manifest_missing", f"The archive has no {MANIFEST_NAME} at its root.")
    if walk.problems:
        raise ValidationFailed("The archive was refused.", code="invalid_archive", errors=walk.problems)
    return walk


def _over_limits(walk: _Walk, archive_size: int) -> bool:
    """Limits that end the walk. Every member counts, accepted or not, directories too."""
    limits = walk.limits
    if walk.members > limits.max_files:
        walk.refuse("archive", "too_many_files", f"The archive holds more than {limits.max_files} members.")
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
    if len(walk.problems) >= MAX_PROBLEMS:
        walk.refuse("archive", "too_many_problems", f"Stopped after {MAX_PROBLEMS} problems.")
        return True
    return False


def _accept(walk: _Walk, entry: _Entry, dest: Path | None) -> None:
    """Check one member, and write it to ``dest`` when there is one."""
    walk.members += 1
    problem = _name_problem(entry, walk.limits)
    if problem:
        walk.refuse(entry.name, *problem)
        return
    if entry.kind not in ("file", "dir"):
        walk.refuse(entry.name, f"{entry.kind}_refused", f"{entry.kind.capitalize()}s are not allowed.")
        return
    path = _normalised(entry.name)
    if path == ".":
        return  # the archive's own root ("./")
    key = unicodedata.normalize("NFC", path).casefold()
    parents = _parents(key)
    if key in walk.files or (entry.kind == "file" and key in walk.dirs) or any(p in walk.files for p in parents):
        walk.refuse(entry.name, "duplicate_name", "Another member has the same path, or uses it as a directory.")
        return
    walk.dirs.update(parents)
    if entry.kind == "dir":
        walk.dirs.add(key)
        if dest is not None:
            (dest / path).mkdir(parents=True, exist_ok=True)
        return
    walk.files.add(key)
    _copy(walk, entry, path, dest)


def _parents(path: str) -> list[str]:
    parts = path.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]


def _normalised(name: str) -> str:
    """``./a//b/./c.py`` and ``a/b/c.py`` are one path (``..`` was refused before)."""
    return posixpath.normpath(name.rstrip("/"))


def _copy(walk: _Walk, entry: _Entry, path: str, dest: Path | None) -> None:
    limits = walk.limits
    if entry.declared_size < 0 or entry.declared_size > limits.max_file_bytes:
        walk.refuse(entry.name, "file_too_large", f"Larger than {limits.max_file_bytes} bytes (or a negative size).")
        return
    if (
        entry.compressed_size
        and entry.declared_size > RATIO_FLOOR_BYTES
        and entry.declared_size > entry.compressed_size * limits.max_ratio
    ):
        walk.refuse(entry.name, "compression_ratio", f"Compressed more than {limits.max_ratio} times (a zip bomb?).")
        return
    keep = path == MANIFEST_NAME
    kept, written = bytearray(), 0
    target = None
    if dest is not None:
        (dest / path).parent.mkdir(parents=True, exist_ok=True)
        target = (dest / path).open("xb")
    try:
        with entry.open() as source:  # type: ignore[operator]
            for chunk in iter(lambda: source.read(CHUNK), b""):
                written += len(chunk)
                if written > limits.max_file_bytes or walk.total + written > limits.max_total_bytes:
                    walk.total += written
                    walk.refuse(entry.name, "file_too_large", "Unpacks to more than the limits allow.")
                    return
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
            return
        walk.manifest = bytes(kept)


def _name_problem(entry: _Entry, limits: ArchiveLimits) -> tuple[str, str] | None:
    name = entry.name
    parts = name.replace("\\", "/").rstrip("/").split("/")
    if not entry.utf8 or any("\udc80" <= ch <= "\udcff" for ch in name):
        return "non_utf8_name", "The name is not UTF-8."
    if not name or len(name) > MAX_NAME_LENGTH or any(ord(ch) < 32 for ch in name):
        return "bad_name", f"The name is empty, longer than {MAX_NAME_LENGTH} characters, or holds control characters."
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return "absolute_path", "Absolute paths and drive letters are not allowed."
    if ".." in parts:
        return "path_traversal", "'..' in a path is not allowed."
    if "\\" in name:
        return "bad_name", "Backslashes in names are not allowed."
    if len([p for p in parts if p not in ("", ".")]) > limits.max_depth:
        return "too_deep", f"Nested deeper than {limits.max_depth} directories."
    return None


def _zip_entries(fileobj: IO[bytes], limits: ArchiveLimits) -> Iterator[_Entry]:
    _refuse_huge_central_directory(fileobj, limits)
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


def _refuse_huge_central_directory(fileobj: IO[bytes], limits: ArchiveLimits) -> None:
    """ZipFile() reads the whole central directory into memory before anything can be
    checked; read its entry count from the end record first."""
    end = zipfile._EndRecData(fileobj)  # type: ignore[attr-defined]  # stable since Python 2
    fileobj.seek(0)
    if end and end[zipfile._ECD_ENTRIES_TOTAL] > limits.max_files:  # type: ignore[attr-defined]
        raise ValidationFailed(
            "The archive was refused.",
            code="invalid_archive",
            errors=[
                {
                    "field": "archive",
                    "code": "too_many_files",
                    "message": f"The archive holds more than {limits.max_files} members.",
                }
            ],
        )


def _tar_entries(fileobj: IO[bytes], limits: ArchiveLimits) -> Iterator[_Entry]:
    """Stream the tar sequentially through a byte budget. Python's tarfile (before 3.11.13)
    can be sent backwards by a negative PAX size: members must move strictly forwards."""
    stream = _BudgetReader(gzip.GzipFile(fileobj=fileobj, mode="rb"), limits.max_total_bytes + TAR_HEADER_ALLOWANCE)
    last_offset = -1
    with tarfile.open(fileobj=stream, mode="r|") as archive:  # type: ignore[call-overload]
        for member in archive:
            if member.offset <= last_offset or member.size < 0:
                raise tarfile.ReadError("members do not move forwards (a malformed or hostile header)")
            last_offset = member.offset
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
            archive.members.clear()  # keeps memory flat on huge archives


def _refused(code: str, detail: str) -> ValidationFailed:
    return ValidationFailed(detail, code=code, errors=[{"field": "artifact", "code": code, "message": detail}])
