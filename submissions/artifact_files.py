"""The files inside a revision's archive: an index made at intake, and members read back.

Both go through intake.py's one limit-checked walk (``_walk``): this module only stands
where the walk expects its destination directory, so every member is checked exactly as
at upload (names, links, sizes, ratios), nothing is written to disk and nothing is run.
The index (``VersionRevision.files``) maps each file's path to its size, SHA-256 and
whether it is text (UTF-8 without NUL), so the files added, removed and changed between
two revisions are known without opening either archive.
"""

import codecs
import hashlib
from collections.abc import Collection, Iterable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypedDict, cast

from django.contrib.auth.models import User
from django.db import transaction

from governance.audit import audit_record
from governance.errors import NotFound, ValidationFailed

from .intake import ArchiveLimits, _digest, _walk

if TYPE_CHECKING:
    from .models import PluginVersion, VersionRevision


class FileEntry(TypedDict):
    size: int
    sha256: str
    text: bool


FileIndex = dict[str, FileEntry]


class ArtifactUnavailable(NotFound):
    """The revision's stored archive is missing, unreadable, or not the one indexed."""

    code = "artifact_unavailable"


def index_archive(fileobj: IO[bytes], filename: str, *, limits: ArchiveLimits | None = None) -> FileIndex:
    """Every file of an archive by its normalised path, sorted; raises ValidationFailed as
    intake does for an archive the walk refuses."""
    size = _digest(fileobj)[1]
    sink = _Sink(keep=frozenset())
    _walk(fileobj, filename, size, limits or ArchiveLimits.from_settings(), dest=cast(Path, sink))
    return dict(sorted(sink.index.items()))


def read_members(revision: "VersionRevision", paths: Iterable[str]) -> dict[str, bytes]:
    """The bytes of ``paths`` (each must be in the revision's index) in one walk of its archive.

    A path the index does not hold, ``../x`` or an absolute one included, is NotFound
    before the archive is opened. The stored archive must still have the SHA-256 it was
    indexed with: reviewers read exactly what was reviewed.
    """
    wanted = frozenset(paths)
    unknown = sorted(wanted - revision.files.keys())
    if unknown:
        raise NotFound(f"{unknown[0]!r} is not a file of {revision}.", code="no_such_file")
    if not wanted:
        return {}
    sink = _Sink(keep=wanted)
    try:
        with revision.artifact.open("rb") as fileobj:
            sha256, size = _digest(fileobj)
            if sha256 != revision.sha256:
                raise ArtifactUnavailable(f"The stored archive of {revision} no longer has its SHA-256.")
            _walk(fileobj, revision.artifact_name, size, ArchiveLimits.from_settings(), dest=cast(Path, sink))
    except OSError as exc:
        raise ArtifactUnavailable(f"The archive of {revision} cannot be read: {type(exc).__name__}.") from None
    except ValidationFailed as exc:  # e.g. limits lowered since the upload
        raise ArtifactUnavailable(f"The archive of {revision} is refused now: {exc.detail}") from None
    return sink.kept


def read_member(revision: "VersionRevision", path: str) -> bytes:
    return read_members(revision, [path])[path]


def artifact_access_record(*, version: "PluginVersion", actor: User, action: str, data: dict[str, Any]) -> None:
    """Who read which code: every browse, diff and download is an audit event on the version."""
    with transaction.atomic():
        audit_record(actor=actor, action=action, target=version, data=data)


# -- the walk's destination ------------------------------------------------------------


class _Sink:
    """Stands in for the directory ``_walk(dest=...)`` extracts into. The walk calls only
    ``(dest / path).mkdir(...)``, ``(dest / path).parent.mkdir(...)`` and
    ``(dest / path).open("xb")`` with the member's checked, normalised path; each file it
    accepts is hashed here, and kept in memory only when asked for."""

    def __init__(self, *, keep: Collection[str]):
        self.keep = keep
        self.index: FileIndex = {}
        self.kept: dict[str, bytes] = {}

    def __truediv__(self, path: str) -> "_SinkPath":
        return _SinkPath(self, path)


class _SinkPath:
    def __init__(self, sink: _Sink, path: str):
        self.sink, self.path = sink, path

    @property
    def parent(self) -> "_SinkPath":
        return self

    def mkdir(self, parents: bool = False, exist_ok: bool = False) -> None:
        pass  # directories hold nothing to index

    def open(self, mode: str) -> "_MemberWriter":
        return _MemberWriter(self.sink, self.path)


class _MemberWriter:
    def __init__(self, sink: _Sink, path: str):
        self.sink, self.path = sink, path
        self.size, self.digest, self.text = 0, hashlib.sha256(), True
        self.decoder = codecs.getincrementaldecoder("utf-8")()
        self.parts: list[bytes] | None = [] if path in sink.keep else None

    def write(self, chunk: bytes) -> int:
        self.size += len(chunk)
        self.digest.update(chunk)
        if self.text:
            self.text = b"\x00" not in chunk and self._decodes(chunk)
        if self.parts is not None:
            self.parts.append(chunk)
        return len(chunk)

    def _decodes(self, chunk: bytes, final: bool = False) -> bool:
        try:
            self.decoder.decode(chunk, final)
        except UnicodeDecodeError:
            return False
        return True

    def close(self) -> None:
        text = self.text and self._decodes(b"", final=True)
        self.sink.index[self.path] = {"size": self.size, "sha256": self.digest.hexdigest(), "text": text}
        if self.parts is not None:
            self.sink.kept[self.path] = b"".join(self.parts)
