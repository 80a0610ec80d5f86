"""A sandboxed run's terms and its record: the limits it runs under, what the harness reported,
and what the runner makes of both.

``SandboxRun`` holds the harness's records, each checked against the shape the harness writes it
in (``_parse``: the plugin shares the harness's process and can write to its pipe, so nothing is
taken on trust), beside what the runner measured from outside (measure.py). Once the run is over,
``_limit_from_exit`` names the limit that stopped it from the way it ended, and
``_reported_contradicts_kernel`` what the plugin's process reported that the kernel contradicts.
"""

import json
import signal
from dataclasses import dataclass, field

from django.conf import settings

from . import tracer

SIGNAL_EXIT = 128  # bwrap exits with 128 + the signal that killed its child
# errno of the exception a plugin died of -> the limit that refused it
ERRNO_LIMITS = {11: "processes", 24: "open-files", 27: "file-size"}
LIMIT_TEXT = {
    "cpu": "the CPU time limit",
    "memory": "the memory (address space) limit",
    "processes": "the process limit",
    "open-files": "the open files limit",
    "file-size": "the file size limit",
    "output": "the output limit",
    "wall-clock": "the wall-clock timeout",
}


EVENT_KINDS = ("file", "network", "subprocess", "environment", "dynamic-code")


class SandboxError(RuntimeError):
    """The sandbox could not run the plugin at all (not the plugin misbehaving)."""


@dataclass(frozen=True)
class Limits:
    cpu_seconds: int = 30
    memory_mb: int = 1024
    processes: int = 64
    open_files: int = 256
    file_size_mb: int = 64
    tmp_mb: int = 256
    output_kb: int = 1024
    wall_seconds: float = 120

    @classmethod
    def configured(cls, **overrides) -> "Limits":
        return cls(**{**settings.WARDEN_SANDBOX_LIMITS, **overrides})

    def inside(self) -> dict[str, int]:
        """What the harness passes to setrlimit."""
        return {
            "cpu_seconds": self.cpu_seconds,
            "address_space_bytes": self.memory_mb * 1024 * 1024,
            "processes": self.processes,
            "open_files": self.open_files,
            "file_size_bytes": self.file_size_mb * 1024 * 1024,
        }


@dataclass
class SandboxRun:
    isolation: str  # "bubblewrap" or "none"
    records: list[dict] = field(default_factory=list)
    output: bytes = b""  # the first output_kb of what the plugin printed
    output_bytes: int = 0
    exit_code: int | None = None
    limit: str = ""  # the limit that stopped the run, "" when none did
    wall_ms: float = 0.0
    # Measured from outside the plugin's process: the kernel's accounting of the whole sandboxed
    # process tree (read from /proc by _measure, memory also sampled while it runs), and the load
    # rounds the runner drove.
    cpu_ms: float = 0.0
    peak_rss_kb: int = 0
    # the harness's process alone, to compare with what it reports: its own CPU time, its reaped
    # children's, its own peak memory
    harness_cpu_ms: float = 0.0
    harness_reaped_cpu_ms: float = 0.0
    harness_rss_kb: int = 0
    rounds: list[dict] = field(default_factory=list)
    forged: list[str] = field(default_factory=list)  # what the plugin's process reported that the outside contradicts
    pid: int = 0  # the runner's child: its process group and session
    pid_namespace: str = ""  # the sandbox's PID namespace ("pid:[...]"), with bubblewrap
    init_pid: int = 0  # its first process, as the host sees it
    # The system-call tracer's view of the run (tracer.py), when it was traced; the nonce of the
    # harness's end-of-run check.
    trace: tracer.Trace | None = None
    canary: str = ""
    tracer_pid: int = 0

    def of_type(self, kind: str) -> list[dict]:
        return [r for r in self.records if r.get("type") == kind]

    @property
    def result(self) -> dict | None:
        done = self.of_type("result")
        return done[-1] if done else None

    @property
    def crash(self) -> dict | None:
        crashes = self.of_type("crash")
        return crashes[0] if crashes else None

    @property
    def tampered(self) -> bool:
        """Something other than the harness wrote to its report pipe."""
        return bool(self.of_type("garbled"))

    @property
    def limit_text(self) -> str:
        return LIMIT_TEXT.get(self.limit, self.limit)


# What the harness's own accounting may differ from the kernel's by, honestly: the clock's
# granularity (stat's ticks) and what the harness does between its getrusage and the runner's
# reading.
CPU_NOISE_MS, CPU_NOISE_SHARE = 25.0, 0.25
RSS_NOISE_KB, RSS_NOISE_SHARE = 8 * 1024, 0.25


def _contradicts(reported: float, measured: float, noise: float, share: float) -> bool:
    return reported > measured + noise or reported < measured * (1 - share) - noise


def _reported_contradicts_kernel(run: SandboxRun) -> list[str]:
    """The harness reports its own rusage (SELF) and its reaped children's (CHILDREN); the plugin
    shares its process and can change what it reports. Like is compared with like: SELF with
    the harness's process's own time and peak, CHILDREN with the children it reaped. So an honest
    subprocess never looks forged, and a plugin under-reports neither; what is still running is
    the kernel's figure alone (the KPI is the whole tree's)."""
    forged = []
    results = run.of_type("result")
    if len(results) > 1:
        forged.append(f"{len(results)} end records where the harness writes one")
    if not results or not run.harness_cpu_ms:
        return forged
    reported = results[-1]
    cpu, rss = float(reported["cpu_ms"]), float(reported["peak_rss_kb"])
    children = float(reported.get("children_cpu_ms", 0))
    if _contradicts(cpu, run.harness_cpu_ms, CPU_NOISE_MS, CPU_NOISE_SHARE):
        forged.append(f"CPU time reported {cpu:.1f} ms, measured by the kernel {run.harness_cpu_ms:.1f} ms")
    if _contradicts(children, run.harness_reaped_cpu_ms, CPU_NOISE_MS, CPU_NOISE_SHARE):
        forged.append(
            f"CPU time of finished subprocesses reported {children:.1f} ms, measured by the kernel "
            f"{run.harness_reaped_cpu_ms:.1f} ms"
        )
    # memory only when under-reported: ru_maxrss keeps the peak of the image the harness was
    # exec'd from (the worker itself, vforked, when no bwrap or strace stands between them)
    if rss < run.harness_rss_kb * (1 - RSS_NOISE_SHARE) - RSS_NOISE_KB:
        forged.append(
            f"peak RSS reported {rss / 1024:.1f} MB, measured by the kernel {run.harness_rss_kb / 1024:.1f} MB"
        )
    return forged


def _parse(line: bytes) -> dict:
    """A record as the harness writes it, or ``garbled``: the plugin shares the harness's
    process and can write to its pipe, so nothing is taken on trust."""
    try:
        record = json.loads(line)
    except ValueError:
        record = None
    if isinstance(record, dict) and _well_formed(record):
        return record
    return {"type": "garbled", "text": line[:200].decode("utf-8", "replace")}


def _number(value, *, positive: bool = False) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and (value > 0 if positive else value >= 0)


def _text(record: dict, *keys: str) -> bool:
    return all(isinstance(record.get(key), str) for key in keys)


def _where(value) -> bool:
    return value == {} or (
        isinstance(value, dict)
        and _text(value, "file", "function")
        and isinstance(value.get("line"), int)
        and not isinstance(value.get("line"), bool)
    )


RECORD_SHAPES = {
    "started": lambda r: isinstance(r.get("uid"), int),
    "event": lambda r: (
        r.get("kind") in EVENT_KINDS
        and _text(r, "target", "phase")
        and _where(r.get("where"))
        and r.get("access", "read") in ("read", "write")
    ),
    "truncated": lambda r: r.get("kind") in EVENT_KINDS,
    "crash": lambda r: (
        _text(r, "exception", "message", "phase")
        and (r.get("errno") is None or isinstance(r.get("errno"), int))
        and _where(r.get("where"))
    ),
    "result": lambda r: (
        _number(r.get("cpu_ms"))
        and _number(r.get("peak_rss_kb"))
        and all(_number(r.get(key, 0)) for key in ("children_cpu_ms", "children_peak_rss_kb"))
    ),
    "canary": lambda r: _text(r, "nonce"),
    "level": lambda r: isinstance(r.get("threads"), int) and r["threads"] >= 1,
    "reply": lambda r: isinstance(r.get("id"), int) and _number(r.get("ms")),
    "round": lambda r: (
        isinstance(r.get("threads"), int)
        and r["threads"] >= 1
        and _number(r.get("seconds"), positive=True)
        and isinstance(r.get("latencies_ms"), list)
        and all(_number(v) for v in r["latencies_ms"])
    ),
}


def _well_formed(record: dict) -> bool:
    check = RECORD_SHAPES.get(record.get("type"))  # type: ignore[arg-type]
    return check is not None and bool(check(record))


def _limit_from_exit(run: SandboxRun, isolated: bool) -> str:
    crash = run.crash
    if crash is not None:
        if crash.get("exception") == "MemoryError":
            return "memory"
        if crash.get("errno") in ERRNO_LIMITS:
            return ERRNO_LIMITS[crash["errno"]]
    code = run.exit_code
    killed_by = (code - SIGNAL_EXIT) if isolated and code and code > SIGNAL_EXIT else -(code or 0)
    if killed_by in (signal.SIGXCPU, signal.SIGKILL):
        return "cpu"  # nothing else here sends SIGKILL: the CPU limit's hard value does
    return ""
