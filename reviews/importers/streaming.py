"""Reading a large JSON report from a file without holding it: the document minus its one big
array (its *skeleton*), then that array's items one at a time.

A 35 MB SARIF log decoded whole is a tree of about 150 MB; streamed, the importer holds the
skeleton (tool, rules, artifacts) and one result at a time, whatever the report's size. ijson's
C backend reads the file in 64 KiB chunks. Both passes read the same file, so what the second
yields is exactly what the first counted: the skeleton records how many items each enclosing
element holds, and a report that names the big array's key twice (which a second pass could not
tell apart) is refused.

Every failure is a ReportError in the words ``load_json`` uses for the same fault.
"""

import codecs
import json
from collections.abc import Iterator
from typing import BinaryIO

import ijson

from reviews.findings_data import ReportError

_CHUNK = 64 * 1024
_STARTS = {"start_map", "start_array"}
_ENDS = {"end_map", "end_array"}


class _Utf8:
    """A binary reader that yields the report as UTF-8 without a BOM: ijson reads UTF-8 only,
    and RFC 8259 (and ``load_json``) also accept UTF-16 and UTF-32, decoded here a chunk at a
    time."""

    def __init__(self, file: BinaryIO) -> None:
        file.seek(0)
        encoding = json.detect_encoding(file.read(4))
        file.seek(len(codecs.BOM_UTF8) if encoding == "utf-8-sig" else 0)
        self.file = file
        self.decoder = None if encoding.startswith("utf-8") else codecs.getincrementaldecoder(encoding)()

    def read(self, size: int = _CHUNK) -> bytes:
        chunk = self.file.read(size)
        if self.decoder is None:
            return chunk
        try:
            text = self.decoder.decode(chunk, final=not chunk)
        except UnicodeDecodeError as exc:
            raise ReportError(f"not JSON: the report is not valid {exc.encoding} text") from None
        return text.encode("utf-8", "surrogatepass")  # a lone surrogate is refused by the parser


def _refusal(exc: Exception) -> ReportError:
    if isinstance(exc, UnicodeDecodeError):
        return ReportError("not JSON Warden can read: it is not valid UTF-8 text or holds a lone UTF-16 surrogate")
    first = str(exc).strip().partition("\n")[0].rstrip(".") or "it ends early"
    return ReportError(f"not JSON: {first}")


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
    try:
        for prefix, event, value in ijson.parse(_Utf8(file), use_float=True):
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
    except ReportError:
        raise
    except (ijson.JSONError, UnicodeDecodeError) as exc:
        raise _refusal(exc) from None
    if not hasattr(builder, "value"):
        raise ReportError("report is empty")
    return builder.value, counts


def items(file: BinaryIO, array: str) -> Iterator[object]:
    """Every item of every array at ``array``, in document order, one at a time."""
    try:
        yield from ijson.items(_Utf8(file), f"{array}.item", use_float=True)
    except (ijson.JSONError, UnicodeDecodeError) as exc:
        raise _refusal(exc) from None


def _where(prefix: str) -> str:
    """An ijson prefix as a place in the report: ``runs.item`` -> ``runs[]``."""
    return prefix.replace(".item", "[]") or "the report"
