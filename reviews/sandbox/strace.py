"""strace's output read as syntax: one call per line, its name, its arguments and its result.

strace splits a call that another process interrupts in two (``<unfinished ...>``, then
``<... resumed>``): ``_joined`` puts it back together. ``_call`` takes quoted strings and file
descriptor decorations out first, so nothing a plugin names (a path, a datagram) can pose as
syntax: in the skeleton left, each is a ``TOKEN`` indexing the call's strings.
"""

import re

SEPARATE = re.compile(r"^(\d+)\s+(.*)$")  # strace pads short PIDs
RESUMED = re.compile(r"^<\.\.\. (\w+) resumed>(.*)$")
UNFINISHED = " <unfinished ...>"
CHILD_PID = re.compile(r"/\* (\d+) in strace's PID NS \*/")
RETURNS = re.compile(r"\)\s+= ")
TOKEN = re.compile(r"\x00(\d+)\x00")


def _joined(raw: str, pending: dict[int, str]) -> tuple[int, str] | None:
    """One whole call per line: strace splits a call another process interrupts in two."""
    match = SEPARATE.match(raw)
    if match is None:
        return None
    pid, body = int(match.group(1)), match.group(2)
    resumed = RESUMED.match(body)
    if resumed is not None:
        body = pending.pop(pid, resumed.group(1) + "(") + resumed.group(2)
    elif body.endswith(UNFINISHED):
        pending[pid] = body[: -len(UNFINISHED)]
        return None
    if body.startswith(("+++", "---")):
        return None
    return pid, body


def _call(body: str) -> tuple[str, tuple[str, list[str]], tuple[bool, str]] | None:
    """``name(args) = result`` -> (name, (skeleton, strings), (failed, result)). Quoted strings
    and fd decorations (``3</tmp/x>``) are taken out first, so nothing a plugin names (a path,
    a datagram) can pose as syntax."""
    name, _, rest = body.partition("(")
    if not name.isidentifier():
        return None
    skeleton, strings = _tokenise(rest)
    ends = list(RETURNS.finditer(skeleton))  # strace pads ") = " to align the results
    if not ends:
        return None
    args, result = skeleton[: ends[-1].start()], skeleton[ends[-1].end() :]
    failed = result.lstrip().startswith(("-1", "?"))
    return name, (args, strings), (failed, TOKEN.sub(lambda m: strings[int(m.group(1))], result))


STRING_OR_FD = re.compile(r'"(?:[^"\\]|\\.)*"?|(?<=[\dD])<[^>]*>?')


def _tokenise(text: str) -> tuple[str, list[str]]:
    strings: list[str] = []

    def token(match: re.Match) -> str:
        value = match.group(0)
        if value[0] == '"':
            strings.append(_unescape(value[1:-1] if len(value) > 1 and value.endswith('"') else value[1:]))
        else:
            strings.append("<" + _unescape(value[1:].rstrip(">")) + ">")
        return f"\x00{len(strings) - 1}\x00"

    return STRING_OR_FD.sub(token, text), strings


ESCAPES = {"n": b"\n", "t": b"\t", "r": b"\r", "v": b"\v", "f": b"\f"}


def _unescape(text: str) -> str:
    def one(match: re.Match) -> str:
        code = match.group(1)
        if code[0] == "x" and len(code) == 3:
            value = bytes([int(code[1:], 16)])
        elif code[0] in "01234567":
            value = bytes([int(code, 8) & 0xFF])
        else:
            value = ESCAPES.get(code, code.encode("utf-8", "surrogateescape"))
        return value.decode("utf-8", "surrogateescape")

    return re.sub(r"\\(x[0-9a-fA-F]{2}|[0-7]{1,3}|.)", one, text)


def _strings(args: tuple[str, list[str]], index: int) -> list[str]:
    """The strings of the ``index``-th top-level argument (an argv array), in order."""
    skeleton, strings = args
    parts = _top_level(skeleton)
    if index >= len(parts):
        return []
    return [strings[int(m.group(1))] for m in TOKEN.finditer(parts[index])]


def _top_level(skeleton: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for char in skeleton:
        if char in "[{(":
            depth += 1
        elif char in "]})":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    parts.append("".join(current).strip())
    return parts


def _string(args: tuple[str, list[str]], part: str) -> str:
    match = TOKEN.search(part)
    return args[1][int(match.group(1))] if match else ""
