"""The tool of a SARIF run and the rules it declares, each read once: what every result of a rule
shares (its title, CWE, default level, ``security-severity`` score and message templates).

A rule's CWE comes from its tags (``external/cwe/cwe-78``) or from a relationship to the CWE
taxonomy; a result's own ``taxa`` can name one too. A result without a ``ruleId`` finds its rule
by index or by reference, and a message given by id is its rule's template, filled in.
"""

import re

from reviews.findings_data import ReportError

from ._base import (
    clip_title,
    expect,
    optional_dict,
    optional_list,
    optional_str,
    severity_from_score,
    show,
    str_list,
)

LEVEL_SEVERITY = {"error": "high", "warning": "medium", "note": "low", "none": "info"}
# "external/cwe/cwe-78" (bandit, CodeQL), "CWE-502: Deserialization of ..." (semgrep), "cwe-020"
_CWE = re.compile(r"(?:^|/)cwe[-_ ]?0*(\d+)", re.IGNORECASE)
_PLACEHOLDER = re.compile(r"\{(\d+)\}")


class _Rule:
    """What every result of one rule shares, computed once per rule rather than per result."""

    __slots__ = ("cwe", "extra", "id", "kind", "level", "messages", "name", "score_severity", "title")

    def __init__(self, raw: object, where: str) -> None:
        expect(raw, dict, where, "an object")
        assert isinstance(raw, dict)
        rule_id = raw.get("id")
        if type(rule_id) is not str or not rule_id:
            raise ReportError(f"{where}.id must be a non-empty string, not {show(rule_id)}")
        self.id = rule_id
        self.name = optional_str(raw, "name", where)
        self.title = clip_title(_text(raw, "shortDescription", where))
        self.level = _default_level(raw, where)
        properties = optional_dict(raw, "properties", where)
        tags = str_list(properties, "tags", f"{where}.properties")
        score = properties.get("security-severity")
        where_score = f"{where}.properties.security-severity"
        self.score_severity = "" if score is None else severity_from_score(score, where_score)
        self.cwe = _cwe_from_tags(tags) or _cwe_from_relationships(raw.get("relationships"), where)
        security = "security" in tags or bool(self.cwe) or bool(self.score_severity)
        self.kind = "security" if security else "quality"
        self.messages = _message_strings(raw, where)
        extra: dict[str, object] = {}  # copied into every finding's data
        if self.name:
            extra["rule_name"] = self.name
        help_uri = optional_str(raw, "helpUri", where)
        if help_uri:
            extra["help_uri"] = help_uri
        precision = properties.get("precision")
        if type(precision) is str:
            extra["precision"] = precision
        if score is not None:
            extra["security_severity"] = score
        self.extra = extra


def _text(parent: dict, key: str, where: str) -> str:
    """``parent[key].text`` (a SARIF multiformatMessageString), or ""."""
    message = parent.get(key)
    if message is None:
        return ""
    expect(message, dict, f"{where}.{key}", "an object")
    return optional_str(message, "text", f"{where}.{key}")


def _default_level(raw: dict, where: str) -> str:
    config = raw.get("defaultConfiguration")
    if config is None:
        return "warning"
    expect(config, dict, f"{where}.defaultConfiguration", "an object")
    level = config.get("level", "warning")
    if type(level) is not str or level not in LEVEL_SEVERITY:
        raise ReportError(f"{where}.defaultConfiguration.level: {show(level)} is not a SARIF level")
    return level


def _cwe_from_tags(tags: list[str]) -> str:
    for tag in tags:
        match = _CWE.search(tag)
        if match:
            return f"CWE-{match.group(1)}"
    return ""


def _cwe_from_relationships(relationships: object, where: str) -> str:
    """SARIF's own way of saying "this rule is CWE-78": a relationship to a CWE taxon."""
    if relationships is None:
        return ""
    expect(relationships, list, f"{where}.relationships", "an array")
    assert isinstance(relationships, list)
    for index, relationship in enumerate(relationships):
        expect(relationship, dict, f"{where}.relationships[{index}]", "an object")
        cwe = _cwe_from_reference(relationship.get("target"), f"{where}.relationships[{index}].target")
        if cwe:
            return cwe
    return ""


def _cwe_from_reference(reference: object, where: str) -> str:
    """A reportingDescriptorReference into the CWE taxonomy ({"id": "78", "toolComponent":
    {"name": "CWE"}}) as "CWE-78", or ""."""
    if reference is None:
        return ""
    expect(reference, dict, where, "an object")
    assert isinstance(reference, dict)
    component = optional_dict(reference, "toolComponent", where)
    taxonomy = optional_str(component, "name", f"{where}.toolComponent")
    taxon = reference.get("id")
    if taxonomy.upper() != "CWE" or not isinstance(taxon, str | int) or isinstance(taxon, bool):
        return ""
    digits = str(taxon).upper().removeprefix("CWE-").lstrip("0")
    return f"CWE-{digits}" if digits.isdigit() else ""


def _message_strings(raw: dict, where: str) -> dict[str, str]:
    strings = raw.get("messageStrings")
    if strings is None:
        return {}
    expect(strings, dict, f"{where}.messageStrings", "an object")
    return {key: _text(strings, key, f"{where}.messageStrings") for key in strings}


def _driver(run: dict, where: str) -> tuple[str, str, tuple[list[_Rule], dict[str, _Rule]]]:
    """The run's tool name, version and rule table (by index and by id; extension rules are
    looked up by id only, the driver's own rules winning)."""
    tool = run.get("tool")
    expect(tool, dict, f"{where}.tool", "an object")
    assert isinstance(tool, dict)
    driver = tool.get("driver")
    expect(driver, dict, f"{where}.tool.driver", "an object")
    assert isinstance(driver, dict)
    name = driver.get("name")
    if type(name) is not str or not name.strip():
        raise ReportError(f"{where}.tool.driver.name must be a non-empty string, not {show(name)}")
    version = optional_str(driver, "version", f"{where}.tool.driver") or optional_str(
        driver, "semanticVersion", f"{where}.tool.driver"
    )
    by_index = _rules(driver, f"{where}.tool.driver")
    by_id: dict[str, _Rule] = {}
    extensions = optional_list(tool, "extensions", f"{where}.tool")
    for number, extension in enumerate(extensions):
        expect(extension, dict, f"{where}.tool.extensions[{number}]", "an object")
        for rule in _rules(extension, f"{where}.tool.extensions[{number}]"):
            by_id.setdefault(rule.id, rule)
    for rule in by_index:
        by_id[rule.id] = rule
    return name.strip(), version, (by_index, by_id)


def _rules(component: dict, where: str) -> list[_Rule]:
    rules = optional_list(component, "rules", where)
    return [_Rule(raw, f"{where}.rules[{index}]") for index, raw in enumerate(rules)]


def _rule_by_reference(result: dict, rule_table: tuple[list[_Rule], dict[str, _Rule]], where: str) -> _Rule:
    """The rule of a result without ``ruleId``: by ``ruleIndex``, or by ``rule.id`` / ``rule.index``."""
    by_index, by_id = rule_table
    reference = result.get("rule")
    index = result.get("ruleIndex")
    if index is None and reference is not None:
        expect(reference, dict, f"{where}.rule", "an object")
        rule_id = reference.get("id")
        if type(rule_id) is str and rule_id in by_id:
            return by_id[rule_id]
        index = reference.get("index")
    if index is None:
        raise ReportError(f"{where} names no rule: it has no ruleId, ruleIndex or rule.id")
    if type(index) is not int or not 0 <= index < len(by_index):
        raise ReportError(f"{where}.ruleIndex: {show(index)} is not an index into the driver's rules")
    return by_index[index]


def _message_text(message: dict, rule: _Rule | None, where: str) -> str:
    """A message given by ``id`` (and ``arguments``) instead of ``text``: the rule's
    messageStrings template with {0}, {1}, ... filled in."""
    if "text" in message:
        raise ReportError(f"{where}.text must be a string, not {show(message['text'])}")
    message_id = message.get("id")
    if type(message_id) is not str:
        raise ReportError(f"{where} has no text (and no message id to look one up)")
    template = rule.messages.get(message_id) if rule is not None else None
    if template is None:
        raise ReportError(f"{where}.id: {show(message_id)} is not in the rule's messageStrings")
    arguments = str_list(message, "arguments", where)

    def fill(match: re.Match[str]) -> str:
        index = int(match.group(1))
        return arguments[index] if index < len(arguments) else match.group(0)

    return _PLACEHOLDER.sub(fill, template)


def _cwe_from_taxa(taxa: object, where: str) -> str:
    expect(taxa, list, where, "an array")
    assert isinstance(taxa, list)
    for index, reference in enumerate(taxa):
        cwe = _cwe_from_reference(reference, f"{where}[{index}]")
        if cwe:
            return cwe
    return ""
