"""What a scanner run hands back, and the one way Warden starts a scanner.

Scanners (bandit, GuardDog) run as child processes of the interpreter that runs Warden, never
in-process: a child can be killed when it overruns its time budget, a crash or a recursion blow-up on
a hostile file stays in the child, and the tool's own JSON report is kept byte for byte as evidence.
"""

import contextlib
import importlib.metadata
import importlib.util
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from reviews.findings_data import FindingData


class ToolError(RuntimeError):
    """The scanner could not produce a report (missing, crashed, refused its arguments). The check
    run is *errored*, not passed: an unscanned plugin must never look clean."""


class ToolMissing(ToolError):
    """The scanner is not installed in Warden's environment."""


class ToolTimeout(ToolError):
    """The scanner overran its wall-clock budget and was killed."""


@dataclass(frozen=True)
class ToolResult:
    tool: str  # "bandit", "guarddog"
    tool_version: str
    findings: list[FindingData]
    raw: bytes  # the tool's own report, unmodified: stored as the check run's evidence
    summary: dict  # counts and timings for the check run page
    capabilities: set[str] = field(default_factory=set)  # GuardDog only: what the code can do


@dataclass(frozen=True)
class ToolRun:
    """One finished child process: what it wrote and how long it took."""

    returncode: int
    stdout: bytes
    stderr: bytes
    seconds: float


def module_version(module: str) -> str:
    """The installed version of a scanner, or ToolMissing: a missing scanner is a setup error,
    reported as such rather than as an empty (clean-looking) report."""
    if importlib.util.find_spec(module) is None:
        raise ToolMissing(f"{module} is not installed in {sys.prefix}; install it from requirements.txt")
    return importlib.metadata.version(module)


def python_module_argv(module: str) -> list[str]:
    """``python -I -m <module>`` with the interpreter running Warden. ``-I`` keeps the working
    directory and PYTHON* variables off ``sys.path``, so files in a plugin can never shadow the
    scanner's own imports."""
    return [sys.executable, "-I", "-m", module]


def run_tool(
    argv: Sequence[str], *, name: str, timeout: float, cwd: Path, env: Mapping[str, str] | None = None
) -> ToolRun:
    """Run a scanner to completion or raise ToolTimeout after ``timeout`` seconds.

    The child gets its own session so a timeout kills whatever it started too."""
    started = time.monotonic()
    with subprocess.Popen(  # noqa: S603 - argv is built by Warden, never from plugin input
        list(argv),
        cwd=cwd,
        env=dict(env) if env is not None else None,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    ) as process:
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_session(process)
            raise ToolTimeout(f"{name} did not finish within {timeout:g} s and was stopped") from None
    return ToolRun(process.returncode, stdout, stderr, round(time.monotonic() - started, 3))


def _kill_session(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):  # it ended on its own meanwhile
        os.killpg(process.pid, signal.SIGKILL)
    process.communicate()


def tail(data: bytes, limit: int = 2000) -> str:
    """The end of a tool's stderr, where the reason for a failure is."""
    return data.decode("utf-8", errors="replace")[-limit:].strip()
