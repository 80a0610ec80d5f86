"""SARIF 2.1.0 (any static analyser) to findings.

Severity, most specific first: bandit's ``properties.issue_severity`` (HIGH/MEDIUM/LOW, one step
lower when its ``issue_confidence`` is LOW, as Warden's own bandit check folds them, so the same
bandit issue has one severity whoever ran bandit), then a ``security-severity`` score on the
result or its rule (GitHub code scanning's convention: >= 9 critical, >= 7 high, >= 4 medium,
> 0 low), then the SARIF ``level`` (absent: the rule's
``defaultConfiguration.level``, else "warning"): error high, warning medium, note low, none info.

The result loop runs 50,000 times on a big report, so everything per-rule (title, CWE, default
level, score) is worked out once in ``_Rule`` (sarif_rules.py, with the rest of what a run's tool
declares); paths are normalised once per distinct URI; and type checks are ``type(x) is T`` with
the error message only built when a check fails.
"""

from collections.abc import Iterable, Iterator
from itertools import islice
from typing import BinaryIO
from urllib.parse import unquote, urlsplit

from reviews.findings_data import FindingData, ReportError

from . import streaming
from ._base import (
    TITLE_MAX,
    ParsedReport,
    clip_title,
    expect,
    optional_list,
    optional_str,
    severity_from_score,
    show,
    summarise,
    summary_of,
)
from .sarif_rules import LEVEL_SEVERITY, _cwe_from_taxa, _driver, _message_text, _rule_by_reference

# bandit's issue_severity, any case; UNDEFINED says nothing and falls through to the level
_BANDIT_SEVERITY = {
    spelling: severity
    for word, severity in (("HIGH", "high"), ("MEDIUM", "medium"), ("LOW", "low"), ("UNDEFINED", ""))
    for spelling in (word, word.lower(), word.title())
}
_LOW_CONFIDENCE = {"high": "medium", "medium": "low"}  # reviews/checks/bandit_scan.py's table
_RESULT_KINDS = frozenset({"pass", "open", "informational", "notApplicable", "review", "fail"})
_NOT_PROBLEMS = frozenset({"pass", "notApplicable"})  # a check that passed is not a finding


def parse(document: object) -> ParsedReport:
    """A SARIF 2.1.0 log to findings, one per result that is a problem (kind "fail", "open",
    "review" or "informational"; "pass" and "notApplicable" results are counted, not kept)."""
    log = _Log(document)
    findings: list[FindingData] = []
    for run in log.runs:
        findings.extend(_read_results(run.results, run, log.counts))
    return ParsedReport("sarif", log.tool, log.tool_version, findings, summary=log.summary(summarise(findings)))


class SarifStream:
    """A SARIF log read from a file in two passes (``streaming``): the log without its results
    (``document``, with how many results each run has: ``sizes``) first, so a wrong envelope
    is refused before anything is stored, then ``findings()``, one result at a time.
    ``summary()`` is complete once ``findings()`` is exhausted."""

    def __init__(self, file: BinaryIO, document: object, sizes: list[int]) -> None:
        self.file, self.sizes = file, sizes
        self.log = _Log(document)
        self.tool, self.tool_version = self.log.tool, self.log.tool_version

    def findings(self) -> Iterator[FindingData]:
        results = streaming.items(self.file, RESULTS)
        for run, size in zip(self.log.runs, self.sizes, strict=True):  # every run has one results array
            yield from _read_results(islice(results, size), run, self.log.counts)

    def summary(self, by_severity: dict[str, int]) -> dict:
        return self.log.summary(summary_of(by_severity))


RESULTS = "runs.item.results"  # the one array of a SARIF log that grows with the code scanned


class _Run:
    """What one run's results are read against: its tool's name and rules, its paths."""

    __slots__ = ("name", "paths", "results", "rules", "version", "where")

    def __init__(self, run: object, where: str) -> None:
        expect(run, dict, where, "an object")
        assert isinstance(run, dict)
        self.where = where
        self.name, self.version, self.rules = _driver(run, where)
        results = run.get("results")
        if results is None:
            raise ReportError(f"{where}.results is missing: the tool recorded no results (did it fail?)")
        expect(results, list, f"{where}.results", "an array")
        self.results: list = results
        self.paths = _Paths(run, where)


class _Log:
    """A SARIF log's envelope and runs, checked; the results are read by ``_read_results``."""

    def __init__(self, document: object) -> None:
        expect(document, dict, "the report", "a JSON object (a SARIF log)")
        assert isinstance(document, dict)
        version = document.get("version")
        if version != "2.1.0":
            if version is None:
                raise ReportError('version is missing: a SARIF 2.1.0 log says "version": "2.1.0"')
            raise ReportError(f"version {show(version)} is not supported (SARIF 2.1.0 only)")
        runs = document.get("runs")
        expect(runs, list, "runs", "an array")
        assert isinstance(runs, list)
        if not runs:
            raise ReportError("runs is empty: the report records no analysis")
        self.runs = [_Run(run, f"runs[{number}]") for number, run in enumerate(runs)]
        self.execution_successful = all([_execution_successful(r, f"runs[{n}]") for n, r in enumerate(runs)])
        self.tool, self.tool_version = self.runs[0].name, self.runs[0].version
        self.counts = {"skipped_results": 0, "suppressed": 0}

    def summary(self, counted: dict) -> dict:
        return {
            **counted,
            "runs": len(self.runs),
            "tools": [run.name for run in self.runs],
            "execution_successful": self.execution_successful,
            **self.counts,
        }


def _execution_successful(run: dict, where: str) -> bool:
    invocations = optional_list(run, "invocations", where)
    for index, invocation in enumerate(invocations):
        expect(invocation, dict, f"{where}.invocations[{index}]", "an object")
        if invocation.get("executionSuccessful") is False:
            return False
    return True


class _Paths:
    """Artifact URIs to plugin-relative paths, once per distinct URI: ``file://`` stripped,
    %-escapes decoded, backslashes made forward, a matching ``originalUriBaseIds`` root (or
    else the leading "/" or drive) removed."""

    __slots__ = ("artifacts", "bases", "cache", "where")

    def __init__(self, run: dict, where: str) -> None:
        self.where = where
        self.cache: dict[str, str] = {}
        self.bases = self._bases(run.get("originalUriBaseIds"), f"{where}.originalUriBaseIds")
        self.artifacts = optional_list(run, "artifacts", where)

    def _bases(self, raw: object, where: str) -> list[str]:
        if raw is None:
            return []
        expect(raw, dict, where, "an object")
        assert isinstance(raw, dict)
        bases = []
        for key, location in raw.items():
            expect(location, dict, f"{where}.{key}", "an object")
            uri = optional_str(location, "uri", f"{where}.{key}")
            if uri.startswith("file:"):
                base = _uri_path(uri)
                bases.append(base if base.endswith("/") else base + "/")
        return sorted(bases, key=len, reverse=True)

    def get(self, uri: str) -> str:
        path = self.cache.get(uri)
        if path is None:
            path = self.cache[uri] = self._relative(uri)
        return path

    def _relative(self, uri: str) -> str:
        path = _uri_path(uri) if uri.startswith("file:") else unquote(uri).replace("\\", "/")
        for base in self.bases:
            if path.startswith(base):
                path = path[len(base) :]
                break
        path = path.lstrip("/")
        if len(path) > 2 and path[1] == ":" and path[2] == "/":  # C:/...
            path = path[3:]
        while path.startswith("./"):
            path = path[2:]
        return path.lstrip("/")

    def of_artifact(self, index: object, where: str) -> str:
        """The URI of ``run.artifacts[index]``: CodeQL and others refer to files by index."""
        if type(index) is not int or not 0 <= index < len(self.artifacts):
            raise ReportError(f"{where}.index: {show(index)} is not an index into {self.where}.artifacts")
        artifact = self.artifacts[index]
        expect(artifact, dict, f"{self.where}.artifacts[{index}]", "an object")
        location = artifact.get("location")
        expect(location, dict, f"{self.where}.artifacts[{index}].location", "an object")
        uri = location.get("uri")
        if type(uri) is not str:
            raise ReportError(f"{self.where}.artifacts[{index}].location.uri must be a string, not {show(uri)}")
        return self.get(uri)


def _uri_path(uri: str) -> str:
    parts = urlsplit(uri)
    return unquote(parts.path).replace("\\", "/")


def _read_results(results: Iterable, run: _Run, counts: dict[str, int]) -> Iterator[FindingData]:
    """The hot loop. Checks are inline and cheap; ``_bad_result`` builds the error when one fails."""
    rule_table, tool, paths, where = run.rules, run.name, run.paths, run.where
    rules_by_id = rule_table[1]
    levels = LEVEL_SEVERITY
    bandit = _BANDIT_SEVERITY
    known_path = paths.cache.get
    for number, result in enumerate(results):
        if type(result) is not dict:
            raise ReportError(f"{where}.results[{number}] must be an object, not {show(result)}")
        rule_id = result.get("ruleId")
        if type(rule_id) is str:
            rule = rules_by_id.get(rule_id)
            if rule is None and "/" in rule_id:  # hierarchical ids: "CA2101/1" belongs to "CA2101"
                rule = rules_by_id.get(rule_id.partition("/")[0])
        elif rule_id is None:
            rule = _rule_by_reference(result, rule_table, f"{where}.results[{number}]")
            rule_id = rule.id
        else:
            raise _bad_result(where, number, "ruleId", rule_id, "a string")

        kind = result.get("kind")
        if kind is not None:
            if type(kind) is not str or kind not in _RESULT_KINDS:
                raise _bad_result(where, number, "kind", kind, "a SARIF result kind")
            if kind in _NOT_PROBLEMS:
                counts["skipped_results"] += 1
                continue

        level = result.get("level")
        if level is None:  # SARIF §3.27.10: "none" unless the result is a failure, else the rule's default
            level = "none" if kind not in (None, "fail") else rule.level if rule is not None else "warning"
        elif type(level) is not str or level not in levels:
            raise ReportError(f"{where}.results[{number}].level: {show(level)} is not a SARIF level")

        message = result.get("message")
        if type(message) is not dict:
            raise _bad_result(where, number, "message", message, "an object")
        text = message.get("text")
        if type(text) is not str:
            text = _message_text(message, rule, f"{where}.results[{number}].message")

        path = ""
        line = None
        snippet = ""
        locations = result.get("locations")
        if locations is not None and type(locations) is not list:
            raise _bad_result(where, number, "locations", locations, "an array")
        if locations:
            first = locations[0]
            if type(first) is not dict:
                raise _bad_result(where, number, "locations[0]", first)
            physical = first.get("physicalLocation")
            if physical is not None:
                if type(physical) is not dict:
                    raise _bad_result(where, number, "locations[0].physicalLocation", physical, "an object")
                artifact = physical.get("artifactLocation")
                if artifact is not None:
                    if type(artifact) is not dict:
                        raise _bad_result(where, number, "locations[0].physicalLocation.artifactLocation", artifact)
                    uri = artifact.get("uri")
                    if type(uri) is str:
                        cached = known_path(uri)
                        path = cached if cached is not None else paths.get(uri)
                    elif uri is None and "index" in artifact:
                        path = paths.of_artifact(
                            artifact["index"], f"{where}.results[{number}].locations[0].physicalLocation"
                        )
                    elif uri is not None:
                        raise _bad_result(
                            where, number, "locations[0].physicalLocation.artifactLocation.uri", uri, "a string"
                        )
                region = physical.get("region")
                if region is not None:
                    if type(region) is not dict:
                        raise _bad_result(where, number, "locations[0].physicalLocation.region", region)
                    line = region.get("startLine")
                    if line is not None and (type(line) is not int or line < 1):
                        raise _bad_result(
                            where, number, "locations[0].physicalLocation.region.startLine", line, "a line number"
                        )
                    code = region.get("snippet")
                    if code is not None:
                        text_of_code = code.get("text", "") if type(code) is dict else None
                        if type(text_of_code) is not str:
                            raise _bad_result(where, number, "locations[0].physicalLocation.region.snippet", code)
                        snippet = text_of_code

        data: dict[str, object]
        if rule is not None:
            data = rule.extra.copy()
            data["level"] = level
        else:
            data = {"level": level}
        severity = ""
        properties = result.get("properties")
        if properties is not None and type(properties) is not dict:
            raise _bad_result(where, number, "properties", properties)
        if properties:
            stated = properties.get("issue_severity")
            if stated is not None:
                stated_severity = bandit.get(stated) if type(stated) is str else None
                if stated_severity is None:
                    raise _bad_result(where, number, "properties.issue_severity", stated, "HIGH, MEDIUM or LOW")
                severity = stated_severity
                confidence = properties.get("issue_confidence")
                if type(confidence) is str:
                    data["confidence"] = confidence.lower()
                    if data["confidence"] == "low":
                        severity = _LOW_CONFIDENCE.get(severity, severity)
            score = properties.get("security-severity")
            if score is not None:
                data["security_severity"] = score
                scored = severity_from_score(score, f"{where}.results[{number}].properties.security-severity")
                severity = severity or scored
        if rule is not None:
            severity = severity or rule.score_severity or levels[level]
            cwe = rule.cwe
            finding_kind = rule.kind
            title = rule.title
        else:  # no rule metadata: a severity stated by bandit or a score marks it as security
            finding_kind = "security" if severity else "quality"
            severity = severity or levels[level]
            cwe = ""
            title = ""
        if not title:  # the message's first line; clip_title only when it needs cutting
            title = text.strip() if len(text) <= TITLE_MAX and "\n" not in text else clip_title(text)
            title = title or (rule.name if rule is not None else "") or rule_id
        taxa = result.get("taxa")
        if taxa is not None:
            cwe = _cwe_from_taxa(taxa, f"{where}.results[{number}].taxa") or cwe
            finding_kind = "security" if cwe else finding_kind
        suppressions = result.get("suppressions")
        if suppressions is not None and _suppressed(suppressions, f"{where}.results[{number}].suppressions"):
            data["suppressed"] = True
            counts["suppressed"] += 1
        yield FindingData(rule_id, title, severity, finding_kind, text, path, line, cwe, tool, snippet, data)


def _bad_result(where: str, number: int, field: str, value: object, what: str = "an object") -> ReportError:
    return ReportError(f"{where}.results[{number}].{field} must be {what}, not {show(value)}")


def _suppressed(suppressions: object, where: str) -> bool:
    """Whether the tool saw an accepted in-source or external suppression (``# nosec``, a
    baseline). Kept as ``data["suppressed"]``, not as a triage: a plugin author's own suppression
    is a claim for the reviewer to weigh, not a verdict."""
    expect(suppressions, list, where, "an array")
    assert isinstance(suppressions, list)
    accepted = False
    for index, suppression in enumerate(suppressions):
        expect(suppression, dict, f"{where}[{index}]", "an object")
        status = suppression.get("status", "accepted")
        if status not in ("accepted", "underReview", "rejected"):
            raise ReportError(f"{where}[{index}].status: {show(status)} is not a SARIF suppression status")
        accepted |= status == "accepted"
    return accepted


def looks_like(document: object) -> bool:
    """Whether a decoded document is SARIF, to tell a CI author they posted the wrong format."""
    if not isinstance(document, dict):
        return False
    schema = document.get("$schema")
    return "runs" in document or (isinstance(schema, str) and "sarif" in schema.lower())
