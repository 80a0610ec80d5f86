"""Importers for reports CI jobs post about a plugin version: SARIF 2.1.0, CycloneDX 1.4+ JSON
(SBOM, with or without VEX), pip-audit JSON and Warden's performance JSON.

``parse_report(format, content)`` is the one entry point. It is pure - bytes in, plain data out,
no Django - so the integrator decides how findings become rows. Every problem with the input is a
``ReportError`` whose message says what is wrong and where, for the CI job's author.
"""

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from reviews.findings_data import FindingData, ReportError

from . import cyclonedx, performance, pip_audit, sarif, streaming
from ._base import Component, ParsedReport, VexStatement, load_json, type_name
from .vex import apply_vex

__all__ = [
    "DEFAULT_MAX_BYTES",
    "FORMATS",
    "STREAMED",
    "Component",
    "ParsedReport",
    "ReportError",
    "StreamedReport",
    "VexStatement",
    "apply_vex",
    "parse_report",
    "stream_report",
]

DEFAULT_MAX_BYTES = 50 * 1024 * 1024

_PARSERS: dict[str, Callable[[object], ParsedReport]] = {
    "sarif": sarif.parse,
    "cyclonedx": cyclonedx.parse,
    "pip-audit": pip_audit.parse,
    "performance": performance.parse,
}
_DETECTORS: dict[str, Callable[[object], bool]] = {
    "cyclonedx": cyclonedx.looks_like,  # before pip-audit: a BOM also has "dependencies"
    "sarif": sarif.looks_like,
    "pip-audit": pip_audit.looks_like,
    "performance": performance.looks_like,
}
STREAMED = ("sarif",)
FORMATS = {"sarif": "SARIF", "cyclonedx": "CycloneDX", "pip-audit": "pip-audit JSON", "performance": "performance JSON"}


def parse_report(format: str, content: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> ParsedReport:
    """Parse one report. ``format`` is "sarif", "cyclonedx" or "pip-audit"; ``content`` the
    posted bytes (UTF-8 JSON; UTF-16/32 and a BOM are tolerated).

    Raises ``ReportError`` for anything wrong with the report, including a report of another
    format than the one claimed; ``ValueError`` for an unknown ``format`` and ``TypeError`` for
    non-bytes ``content`` (both are the caller's bug, not the CI author's).
    """
    parser = _PARSERS.get(format)
    if parser is None:
        raise ValueError(f"unknown report format {format!r}; expected one of {', '.join(_PARSERS)}")
    if not isinstance(content, bytes | bytearray | memoryview):
        raise TypeError(f"report content must be bytes, not {type(content).__name__}")
    if len(content) > max_bytes:
        raise ReportError(f"report is larger than {max_bytes} bytes ({len(content)} bytes)")
    data = bytes(content)  # no copy when it already is bytes
    if not data or data.isspace():  # isspace() stops at the first non-blank byte
        raise ReportError("report is empty")
    document = load_json(data)
    _check_format(format, document)
    with _shape_errors(format):
        return parser(document)


@dataclass
class StreamedReport:
    """A report read from a file: ``report`` is all it says but its findings, which
    ``findings`` yields one at a time; ``summary(by_severity)`` is the report's summary once
    they have all been read and counted."""

    report: ParsedReport
    findings: Iterator[FindingData]
    summary: Callable[[dict[str, int]], dict]


def stream_report(format: str, file: BinaryIO) -> StreamedReport:
    """``parse_report`` for a report in a file (a worker's), in memory that stays flat whatever
    its size. Only SARIF (``STREAMED``) is streamed: the other formats list packages, not lines
    of code, and are read whole. A wrong report raises ReportError before the first finding,
    where it can (a result refused midway raises it from ``findings``)."""
    if format not in STREAMED:
        raise ValueError(f"{format!r} reports are not streamed; expected one of {', '.join(STREAMED)}")
    document, sizes = streaming.skeleton(file, sarif.RESULTS)
    _check_format(format, document)
    with _shape_errors(format):
        log = sarif.SarifStream(file, document, sizes)
    return StreamedReport(
        ParsedReport(format, log.tool, log.tool_version), _guarded(format, log.findings()), log.summary
    )


@contextlib.contextmanager
def _shape_errors(format: str) -> Iterator[None]:
    try:
        yield
    except ReportError:
        raise
    except (TypeError, ValueError, KeyError, IndexError, AttributeError, RecursionError) as exc:
        # A gap in the importers' own checks: the caller still gets a ReportError, never a 500.
        shape = f"{type(exc).__name__}: {exc}"
        raise ReportError(f"{FORMATS[format]} report has an unexpected shape ({shape})") from exc


def _guarded(format: str, findings: Iterator[FindingData]) -> Iterator[FindingData]:
    with _shape_errors(format):
        yield from findings


def _check_format(claimed: str, document: object) -> None:
    """Say "this is a CycloneDX document, not SARIF" instead of a confusing field error."""
    if not isinstance(document, dict):
        if isinstance(document, list) and claimed == "pip-audit":
            return  # pip_audit.parse explains the expected shape
        raise ReportError(f"the report must be a JSON object, not {type_name(document)}")
    if _DETECTORS[claimed](document):
        return
    for other, detector in _DETECTORS.items():
        if other != claimed and detector(document):
            raise ReportError(f"this is a {FORMATS[other]} document, not {FORMATS[claimed]}")
