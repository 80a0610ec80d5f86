r"""Text from outside that Warden repeats: it must always encode as UTF-8.

A lone UTF-16 surrogate (U+D800 to U+DFFF) is not Unicode text, but Python strings can hold
one: an archive member's name with an undecodable byte (``surrogateescape`` keeps the byte as
U+DC80 to U+DCFF), or a ``"\udc80"`` escape in a JSON document. Written to a response, a log
or PostgreSQL it raises, so documents holding one are refused where they are read
(``lone_surrogate``), and every refusal's text is made encodable (``encodable``) before it is
shown, so that naming the offending value can never be a 500 itself.
"""

import re

import yaml

SURROGATE = re.compile("[\ud800-\udfff]")
# A JSON escape that may decode to a lone surrogate; text without one cannot hold any.
SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def encodable(text: str) -> str:
    """``text``, with each lone surrogate written as its escape (``caf\\udce9.py``)."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8") if SURROGATE.search(text) else text


def lone_surrogate(value: object) -> str | None:
    """The first string of a parsed JSON document (keys included) holding a lone surrogate,
    made encodable; None when there is none."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if SURROGATE.search(item):
                return encodable(item)
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return None


def encodable_errors(errors: list[dict]) -> list[dict]:
    return [{key: encodable(v) if isinstance(v, str) else v for key, v in error.items()} for error in errors]


class _NoAliasLoader(yaml.SafeLoader):
    """PyYAML's safe loader without aliases: ``*name`` repeats a node by reference, so a few
    hundred bytes of nested aliases (a "billion laughs") expand to gigabytes. No document
    Warden reads needs one."""

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise yaml.composer.ComposerError(None, None, "aliases (*name) are not accepted: write the value out", mark)
        return super().compose_node(parent, index)


def yaml_load(text: str) -> object:
    """``yaml.safe_load`` for text from outside: refuses aliases (a yaml.YAMLError)."""
    return yaml.load(text, Loader=_NoAliasLoader)  # noqa: S506 - a SafeLoader subclass
