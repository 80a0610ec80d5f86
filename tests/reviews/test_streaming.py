"""Streaming a SARIF log from a file (reviews/importers/streaming.py, ``stream_report``): what a
worker imports must be exactly what ``parse_report`` reads from the same bytes, in every
encoding RFC 8259 allows, and a log it cannot read is refused in the same words. No database.
"""

import codecs
import io
import json
from collections import Counter
from pathlib import Path

import pytest

from reviews.findings_data import ReportError
from reviews.importers import parse_report, stream_report

REPORTS = Path(__file__).resolve().parents[1] / "fixtures" / "reports"
SARIF = [REPORTS / "bandit.sarif", REPORTS / "cifuzz.sarif", REPORTS / "bandit-acme-shell.sarif"]
ENCODINGS = {
    "utf-8": lambda text: text.encode(),
    "utf-8 with BOM": lambda text: codecs.BOM_UTF8 + text.encode(),
    "utf-16": lambda text: text.encode("utf-16"),
    "utf-32-be": lambda text: text.encode("utf-32-be"),
}


def streamed(content: bytes):
    """(tool, tool_version, findings, summary) of a log streamed from a file."""
    report = stream_report("sarif", io.BytesIO(content))
    findings = list(report.findings)
    summary = report.summary(Counter(finding.severity for finding in findings))
    return report.report.tool, report.report.tool_version, findings, summary


def parsed(content: bytes):
    report = parse_report("sarif", content)
    return report.tool, report.tool_version, report.findings, report.summary


def refusal(read, content: bytes) -> str:
    with pytest.raises(ReportError) as caught:
        read(content)
    return str(caught.value)


@pytest.mark.parametrize("path", SARIF, ids=lambda path: path.name)
@pytest.mark.parametrize("encoding", ENCODINGS)
def test_a_streamed_log_is_what_parsing_it_whole_reads(path, encoding):
    content = ENCODINGS[encoding](path.read_text())

    assert streamed(content) == parsed(content)
    assert streamed(content)[2]  # every fixture has findings: the comparison is not of nothing


def test_results_of_several_runs_are_streamed_in_order_with_their_own_run():
    document = json.loads((REPORTS / "bandit.sarif").read_bytes())
    second = json.loads((REPORTS / "cifuzz.sarif").read_bytes())["runs"][0]
    document["runs"].append(second)
    content = json.dumps(document).encode()

    tool, _version, findings, summary = streamed(content)

    assert (tool, findings, summary) == parsed(content)[:1] + parsed(content)[2:]
    assert {f.rule_id for f in findings[-len(second["results"]) :]} <= {r["ruleId"] for r in second["results"]}


def test_a_big_log_is_read_a_result_at_a_time():
    """The results of a log are not decoded before they are asked for: a refused result
    deep in a long log is met after the findings before it have been yielded."""
    document = json.loads((REPORTS / "bandit.sarif").read_bytes())
    results = document["runs"][0]["results"]
    document["runs"][0]["results"] = results * 500 + [{"message": {"text": "no rule"}, "level": "shout"}]
    report = stream_report("sarif", io.BytesIO(json.dumps(document).encode()))

    yielded = []
    with pytest.raises(ReportError, match="names no rule"):  # noqa: PT012 (the refusal comes midway)
        for finding in report.findings:
            yielded.append(finding)
    assert len(yielded) == len(results) * 500


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "report is empty"),
        (b"   \n", "report is empty"),
        (b"{not json", "not JSON: "),
        (b'{"version": "2.1.0", "runs": [', "not JSON: "),
        (b"\xff\xfe\x00", "not JSON"),
        (b"[1, 2]", "must be a JSON object, not an array"),
        (b'{"version": "2.1.0", "runs": []}', "runs is empty"),
        (b'{"version": "2.0.0", "runs": [{}]}', "version '2.0.0' is not supported"),
        (b'{"version": "2.1.0", "runs": "all"}', "runs must be an array"),
        (b'{"version": "2.1.0", "runs": [], "runs": [{}]}', "the report names runs twice"),
        (
            b'{"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "x"}}, "results": [], "results": [{}]}]}',
            "runs[] names results twice",
        ),
    ],
)
def test_a_log_it_cannot_read_is_refused_before_its_first_finding(content, message):
    with pytest.raises(ReportError, match=message.replace("[", r"\[").replace("(", r"\(")):
        stream_report("sarif", io.BytesIO(content))


def test_a_shape_refusal_is_in_the_words_parsing_uses():
    document = json.loads((REPORTS / "bandit.sarif").read_bytes())
    document["runs"][0]["results"][3]["locations"] = "here"
    content = json.dumps(document).encode()

    assert refusal(streamed, content) == refusal(parsed, content)


def padded(text: str, at: int) -> bytes:
    """A bandit log with ``text`` in its first message, starting ``at`` bytes into the file."""
    document = (REPORTS / "bandit.sarif").read_text()
    head, marker, tail = document.partition('"text": "')
    padding = at - len(head) - len(marker) - len('"x": "", ')
    return (head + f'"x": "{" " * padding}", ' + marker + text + tail).encode()


@pytest.mark.parametrize("at", [6000, 65536 - 3, 65536 - 8, 65536 + 2])  # ijson reads 64 KiB at a time
@pytest.mark.parametrize(
    ("text", "refused"),
    [
        ("\\ud800", True),
        ("\\udc00", True),
        ("\\ud83d\\ude00", False),  # a pair: one character
        ("\\\\ud800", False),  # a backslash, then the letters ud800
        ("\\\\\\ud800", True),
        ("\\ud83d\\u0041", True),
    ],
)
def test_a_lone_surrogate_escape_is_refused_where_ever_it_falls(text, refused, at):
    content = padded(text, at)
    assert content.index(text.encode()) == at

    if refused:
        assert "lone UTF-16 surrogate" in refusal(streamed, content)
        assert "lone UTF-16 surrogate" in refusal(parsed, content)
    else:
        assert streamed(content) == parsed(content)


@pytest.mark.parametrize("depth", [250, 100_000])
def test_deep_nesting_in_a_result_is_refused_not_a_crash(depth):
    """ijson's own prefixes would cost gigabytes here (each as long as its depth)."""
    document = (REPORTS / "bandit.sarif").read_text()
    content = document.replace('"properties": {', '"properties": {"deep": ' + "[" * depth + "]" * depth + ", ", 1)

    with pytest.raises(ReportError, match="nested more than 200 deep"):
        streamed(content.encode())


def test_only_sarif_is_streamed():
    with pytest.raises(ValueError, match="not streamed"):
        stream_report("cyclonedx", io.BytesIO(b"{}"))
