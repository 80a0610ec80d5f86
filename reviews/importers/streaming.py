"""Reading a large JSON report from a file without holding it: the document minus its one big
array (its *skeleton*), then that array's items one at a time.

A 35 MB SARIF log decoded whole is a tree of about 150 MB; streamed, the importer holds the
skeleton (tool, rules, artifacts) and one result at a time, whatever the report's size. ijson's
C backend reads the file in 64 KiB chunks. Both passes read the same file, so what the second
yields is exactly what the first counted: the skeleton records how many items each enclosing
element holds, and a report that names the big array's key twice (which a second pass could not
tell apart) is refused.

ijson's own ``parse`` and ``items`` build each event's prefix as a string, so a result nested
100,000 deep costs gigabytes (every event's prefix is as long as its depth): here the events come
from ``basic_parse``, the path is kept as a stack, named only as deep as the big array, and a
report nested deeper than ``MAX_DEPTH`` is refused.

Every failure is a ReportError in the words ``load_json`` uses for the same fault.
"""

import codecs
import json
import re
from collections.abc import Iterator
from typing import BinaryIO

import ijson

from reviews.findings_data import ReportError

_CHUNK = 64 * 1024
MAX_DEPTH = 200  # a SARIF log is a dozen levels deep
_STARTS = {"start_map", "start_array"}
_ENDS = {"end_map", "end_array"}


# A \\uXXXX escape of a surrogate (not itself escaped by a backslash before it): a high one with
# the low one after it is a character, any other is a lone surrogate, which is not text.
_SURROGATE = re.compile(
    rb"(?<!\\)(?:\\\\)*\\u[dD]([89abAB][0-9a-fA-F]{2}(?:\\u[dD][c-fC-F][0-9a-fA-F]{2})?|[c-fC-F][0-9a-fA-F]{2})"
)
_REACH = 16  # bytes an escape and its pair span, kept from one chunk to be judged with the next


class _Utf8:
    """A binary reader that yields the report as UTF-8 without a BOM: ijson reads UTF-8 only,
    and RFC 8259 (and ``load_json``) also accept UTF-16 and UTF-32, decoded here a chunk at a
    time. It refuses a report that is blank, or holds a lone surrogate escape, which yajl would
    read as "?" where ``load_json`` refuses it."""

    def __init__(self, file: BinaryIO) -> None:
        file.seek(0)
        encoding = json.detect_encoding(file.read(4))
        file.seek(len(codecs.BOM_UTF8) if encoding == "utf-8-sig" else 0)
        self.file = file
        self.decoder = None if encoding.startswith("utf-8") else codecs.getincrementaldecoder(encoding)()
        self.blank = True
        self.carry = b""

    def read(self, size: int = _CHUNK) -> bytes:
        if not size:
            return b""  # ijson asks for nothing first, to learn the file is binary
        while True:  # a chunk of UTF-16 or -32 may end mid-character: read on (b"" is the end)
            raw = chunk = self.file.read(size)
            if self.decoder is not None:
                try:
                    chunk = self.decoder.decode(raw, final=not raw).encode("utf-8", "surrogatepass")
                except UnicodeDecodeError as exc:
                    raise ReportError(f"not JSON: the report is not valid {exc.encoding} text") from None
            if chunk or not raw:
                break
        if self.blank:
            self.blank = not chunk.strip()
            if self.blank and not raw:
                raise ReportError("report is empty")
        self._judge(chunk)
        return chunk

    def _judge(self, chunk: bytes) -> None:
        text = self.carry + chunk
        if b"\\u" not in text:
            self.carry = text[-_REACH:]
            return
        end = len(text) - _REACH if chunk else len(text)  # an escape after ``end`` may go on in the next chunk
        for match in _SURROGATE.finditer(text):
            if match.start() >= end:
                break
            if len(match[1]) == 3:  # not a high surrogate and its low one
                escape = match[0].rpartition(b"\\u")[2].decode()
                raise ReportError(
                    f"not JSON Warden can read: it holds a lone UTF-16 surrogate (\\u{escape}), which is not text"
                )
            end = max(end, match.end())
        self.carry = text[end:]


def _refusal(exc: Exception) -> ReportError:
    if isinstance(exc, UnicodeDecodeError):
        return ReportError("not JSON Warden can read: it is not valid UTF-8 text or holds a lone UTF-16 surrogate")
    first = str(exc).strip().partition("\n")[0].rstrip(".") or "it ends early"
    return ReportError(f"not JSON: {first}")


def _events(file: BinaryIO, named: int) -> Iterator[tuple[str | None, str, object]]:
    """ijson's ``parse`` events, ``(prefix, event, value)``, with the prefix None for a value
    more than ``named`` levels deep (no caller looks deeper)."""
    path: list[str | None] = []  # the prefix of each open container
    arrays: list[bool] = []  # whether each open container is an array
    prefix: str | None = ""  # the prefix of the next value
    try:
        for event, value in ijson.basic_parse(_Utf8(file), use_float=True):
            if event == "map_key":
                yield path[-1], event, value
                parent = path[-1]
                prefix = None if parent is None or len(path) > named else f"{parent}.{value}" if parent else str(value)
                continue
            if event in _ENDS:
                own = path.pop()
                arrays.pop()
                yield own, event, value
            else:
                yield prefix, event, value
                if event in _STARTS:
                    if len(path) == MAX_DEPTH:
                        raise ReportError(f"not JSON Warden can read: it is nested more than {MAX_DEPTH} deep")
                    path.append(prefix)
                    arrays.append(event == "start_array")
            if arrays and arrays[-1]:
                parent = path[-1]
                prefix = None if parent is None or len(path) > named else f"{parent}.item" if parent else "item"
    except ReportError:
        raise
    except (ijson.JSONError, UnicodeDecodeError) as exc:
        raise _refusal(exc) from None


def skeleton(file: BinaryIO, array: str) -> tuple[object, list[int]]:
    """The document with every array at ``array`` (an ijson prefix such as
    ``runs.item.results``) left empty, and how many items each such array held, in document
    order. An object on the way that names the next key twice is refused."""
    item = f"{array}.item"
    parts = array.split(".")
    once = {".".join(parts[:n]): part for n, part in enumerate(parts) if part != "item"}  # prefix -> key
    seen: dict[str, bool] = {}
    builder = ijson.ObjectBuilder()
    counts: list[int] = []
    depth = 0  # > 0: inside an item being skipped
    for prefix, event, value in _events(file, len(parts) + 1):
        if depth:
            depth += (event in _STARTS) - (event in _ENDS)
            continue
        if prefix == item and event != "map_key" and counts and seen.get(array):
            counts[-1] += 1
            depth = int(event in _STARTS)
            continue
        if prefix == array and event == "start_array":
            counts.append(0)
            seen[array] = True  # its items are counted, not kept
        elif prefix == array and event == "end_array":
            seen[array] = False
        elif prefix in once:
            if event == "start_map":
                seen[prefix] = False
            elif event == "map_key" and value == once[prefix]:
                if seen[prefix]:
                    raise ReportError(f"{_where(prefix)} names {value} twice")
                seen[prefix] = True
        builder.event(event, value)
    if not hasattr(builder, "value"):
        raise ReportError("report is empty")
    return builder.value, counts


def items(file: BinaryIO, array: str) -> Iterator[object]:
    """Every item of every array at ``array``, in document order, one at a time."""
    item = f"{array}.item"
    builder: ijson.ObjectBuilder | None = None
    depth = 0
    for prefix, event, value in _events(file, len(array.split(".")) + 1):
        if builder is not None:
            builder.event(event, value)
            depth += (event in _STARTS) - (event in _ENDS)
            if not depth:
                yield builder.value
                builder = None
        elif prefix == item and event != "map_key":
            if event in _STARTS:
                builder, depth = ijson.ObjectBuilder(), 1
                builder.event(event, value)
            else:
                yield value


def _where(prefix: str) -> str:
    """An ijson prefix as a place in the report: ``runs.item`` -> ``runs[]``."""
    return prefix.replace(".item", "[]") or "the report"
