"""The system-call tracer: what the sandboxed process tree did, seen from outside it.

The worker runs ``strace -f --seccomp-bpf`` around bubblewrap, outside its namespaces, and
writes the trace to a file the sandbox has no path to. The plugin cannot see the tracer (it is
in the host's PID namespace), signal it (another user, another namespace), detach from it
(``PTRACE_TRACEME`` fails: it is traced already) or leave it by forking (``-f`` attaches each
child before its first instruction). The seccomp filter strace installs stays on every process
of the tree: a child cloned with ``CLONE_UNTRACED`` escapes the tracer but then cannot make any
traced system call (the kernel fails them with ENOSYS), and the clone itself is in the trace.
What could still hide a system call from the tracer — installing a seccomp filter of its own
(user notification takes precedence over tracing), io_uring, ptrace — is itself traced and
reported as an evasion.

``parse`` turns the trace into ``Effect`` rows for the harness's process tree: processes
executed, file opens that write, connections and datagrams with an address, sockets bound and
listening, and those evasions (strace.py reads strace's lines, effects.py says which calls are
effects and of what kind). ``reconcile`` (called by the behaviour check) compares them with
what the audit hook reported.
"""

import contextlib
import functools
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings

from .effects import SENSITIVE_READS, WRITE_FLAGS, WRITES, Effect, _effects, private
from .harness import CANARY  # the harness opens it, and nothing else, at its end
from .strace import CHILD_PID, _call, _joined, _strings

SYSCALLS = (
    "execve,execveat,clone,clone3,fork,vfork,open,openat,openat2,creat,connect,sendto,sendmsg,sendmmsg,"
    "bind,listen,seccomp,prctl,ptrace,io_uring_setup,"
    "write,writev,pwrite64,pwritev,pwritev2,sendfile,splice,tee,vmsplice"  # to the report pipe: who writes it
)
MAX_TRACE_BYTES = 64 * 1024 * 1024
NAME_SERVICE_SOCKETS = ("/var/run/nscd/socket", "/run/nscd/socket")
# The resolver glibc falls back to without /etc/resolv.conf: the sandbox's own loopback, in a
# network namespace of its own (nothing answers, nothing leaves)
LOOPBACK_RESOLVERS = ("127.0.0.1:53", "::1:53", "[::1]:53")


@dataclass
class Trace:
    started: bool = False  # the harness's interpreter start was seen
    harness_pid: int = 0
    effects: list[Effect] = field(default_factory=list)
    truncated: bool = False
    parents: dict[int, int] = field(default_factory=dict)  # child -> the process that cloned it
    threads: set[int] = field(default_factory=set)  # of those, the threads (CLONE_THREAD)
    # In bubblewrap, /tmp and /dev are the sandbox's own; without isolation they are the host's.
    isolated: bool = True

    def of_kind(self, kind: str) -> list[Effect]:
        return [e for e in self.effects if e.kind == kind]


@functools.cache
def tracer_available() -> bool:
    """strace is installed and may trace here, with its seccomp-bpf filter."""
    binary = shutil.which(getattr(settings, "WARDEN_SANDBOX_STRACE", "strace"))
    if binary is None:
        return False
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        probe = subprocess.run(  # noqa: S603 - a fixed argument list
            [binary, "-f", "--seccomp-bpf", "-qq", "-e", "trace=execve", "-o", "/dev/null", "--", "true"],
            capture_output=True,
            timeout=30,
            check=False,
        )
        return probe.returncode == 0
    return False


def tracer_argv(output: Path) -> list[str]:
    """strace around the sandbox: follow forks, decode file descriptors (a dirfd's path, a
    socket's inode) and child PIDs into the tracer's namespace, and stop only at the traced calls."""
    binary = shutil.which(getattr(settings, "WARDEN_SANDBOX_STRACE", "strace")) or "strace"
    return [
        binary, "-f", "--seccomp-bpf", "-qq", "-y", "--decode-pids=pidns", "-s", "4096",
        "-e", f"trace={SYSCALLS}", "-e", "signal=none", "-o", str(output), "--",
    ]  # fmt: skip


def parse(path: Path, *, harness_argv: tuple[str, ...], report_pipe: str = "", isolated: bool = True) -> Trace:
    """The effects of the harness's process tree: the process that starts the interpreter with
    ``harness_argv`` (the flags and the harness file) and every process cloned from it after.
    What bubblewrap does before that start is the sandbox's own set-up, not the plugin's.
    ``report_pipe`` (``pipe:[inode]``) is the harness's report channel: writes to it are kept.
    Two passes: a child's first call can reach the trace before its parent's clone returns."""
    trace = Trace(isolated=isolated)
    with open(path, "rb") as stream:
        data = stream.read(MAX_TRACE_BYTES + 1)
    trace.truncated = len(data) > MAX_TRACE_BYTES
    calls = []
    pending: dict[int, str] = {}
    for raw in data[:MAX_TRACE_BYTES].decode("utf-8", "surrogateescape").split("\n"):
        line = _joined(raw, pending)
        if line is not None and _uninteresting(line[1], report_pipe):
            continue
        parsed = _call(line[1]) if line is not None else None
        if parsed is None:
            continue
        pid, (name, args, result) = line[0], parsed  # type: ignore[index]
        if not trace.started:
            if name == "execve" and _strings(args, 1)[1 : 1 + len(harness_argv)] == list(harness_argv):
                trace.started, trace.harness_pid = True, pid
            continue
        calls.append((pid, name, args, result))
        if name in ("clone", "clone3", "fork", "vfork"):
            child = CHILD_PID.search(result[1]) or re.match(r"\s*(\d+)", result[1])
            if child and int(child.group(1)) > 0:
                trace.parents[int(child.group(1))] = pid
                if "CLONE_THREAD" in args[0]:
                    trace.threads.add(int(child.group(1)))
    tree = {pid for pid in {trace.harness_pid, *trace.parents} if _descends(pid, {trace.harness_pid}, trace.parents)}
    sockets: dict[str, str] = {}  # socket inode -> the address it was bound to
    for pid, name, args, result in calls:
        if pid in tree:
            trace.effects += _effects(pid, name, args, result, sockets, report_pipe)
    return trace


def _uninteresting(body: str, report_pipe: str) -> bool:
    """Most of a trace is the interpreter opening files to read, and writes to its output:
    skipped before the work of parsing (a path or a buffer that merely names a flag or the
    pipe is parsed, and judged, like any other)."""
    if body.startswith(WRITES):
        return not report_pipe or report_pipe not in body
    return (
        body.startswith(("openat(", "open("))
        and CANARY not in body
        and not any(f in body for f in WRITE_FLAGS)
        and not any(marker in body for marker in SENSITIVE_READS)
    )


def reconcile(trace: Trace, records: list[dict], *, declared, canary: str, ordinary: tuple[str, ...] = ()) -> list[str]:
    """What the tracer saw that the audit hook did not report, for the effects that matter:
    a process executed, a file written outside the sandbox's private /tmp and /dev (anywhere, when
    the run had no isolation: those are then the host's), a connection
    or datagram with an address, a socket bound or listening, a key or credential read (outside
    the Python installation and ``ordinary``: the plugin's tree, its environment), when the
    manifest does not declare it (``declared(kind, target)``); and every evasion of the tracer
    itself. The hook gives the attribution, the tracer the truth: a kind the hook stopped
    recording (truncated) is not held against it here, its own finding says so."""
    events = [r for r in records if r.get("type") == "event"]
    truncated = {r.get("kind") for r in records if r.get("type") == "truncated"}
    unexplained = [f"{e.describe()}, a way around the tracer" for e in trace.of_kind("evasion")]
    if "subprocess" not in truncated:
        unexplained += _unexplained_execs(trace, [e for e in events if e.get("kind") == "subprocess"], declared)
    if "file" not in truncated:
        writes = [e for e in events if e.get("kind") == "file" and e.get("access") == "write"]
        unexplained += [
            f"{e.describe()}, a write the audit hook did not report"
            for e in trace.of_kind("write")
            if not private(e.target, isolated=trace.isolated)
            and not declared("write", e.target)
            and not _write_reported(e.target, writes)
        ]
        files = [e for e in events if e.get("kind") == "file"]
        installed = tuple({sys.base_prefix + "/", os.path.realpath(sys.base_prefix) + "/"})
        unexplained += [
            f"{e.describe()}, a read the audit hook did not report"
            for e in trace.of_kind("read")
            if not e.target.startswith((*installed, *ordinary))
            and not declared("read", e.target)
            and not _write_reported(e.target, files)
        ]
    if "network" not in truncated:
        unexplained += _unexplained_network(trace, [e for e in events if e.get("kind") == "network"], declared)
    return unexplained + _report_writers(trace) + _end_of_run(trace, records, canary)


def _unexplained_execs(trace: Trace, reported: list[dict], declared) -> list[str]:
    """An exec is the hook's when its command is one the hook reported (``sh -c <command>`` for
    ``os.system`` and ``shell=True``), or when it runs in a process descended from one that was
    (what a reported command starts is on its behalf)."""
    targets = {str(e.get("target", "")) for e in reported}
    explained: set[int] = set()
    hidden: set[int] = set()  # what an unreported process starts is reported once, with it
    unexplained = []
    for effect in trace.of_kind("exec"):
        argv = list(effect.argv)
        commands = {" ".join(argv), effect.detail, " ".join(argv[2:]) if argv[1:2] == ["-c"] else ""}
        if _descends(effect.pid, explained, trace.parents) or (commands - {""}) & targets:
            explained.add(effect.pid)
        elif not declared("exec", effect.target) and not _descends(effect.pid, hidden, trace.parents):
            hidden.add(effect.pid)
            unexplained.append(f"{effect.describe()}, a process the audit hook did not report")
    return unexplained


def _descends(pid: int, ancestors: set[int], parents: dict[int, int]) -> bool:
    seen = set()
    while pid and pid not in seen:
        if pid in ancestors:
            return True
        seen.add(pid)
        pid = parents.get(pid, 0)
    return False


def _write_reported(path: str, writes: list[dict]) -> bool:
    """The hook keeps one file event per directory and access: the same directory will do."""
    directory = os.path.dirname(path)
    return any(str(e.get("target")) == path or os.path.dirname(str(e.get("target"))) == directory for e in writes)


def _unexplained_network(trace: Trace, reported: list[dict], declared) -> list[str]:
    """Traffic is the hook's when it reported that very address for a connect or a datagram (an
    IP literal cannot come from a declared name: the sandbox has no DNS), or the manifest
    declares it. A look-up the hook reported explains only glibc's query to its fallback
    resolver on the sandbox's own loopback."""
    lookups = [e for e in reported if e.get("operation") == "lookup"]
    unexplained = []
    for effect in trace.effects:
        if effect.kind not in ("network", "bind", "listen") or effect.target in NAME_SERVICE_SOCKETS:
            continue
        if effect.kind == "network" and effect.target in LOOPBACK_RESOLVERS and lookups:
            continue
        if declared(effect.kind, effect.target) or _address_reported(effect, reported, resolved=not trace.isolated):
            continue
        unexplained.append(f"{effect.describe()}, {_NETWORK_TEXT[effect.kind]} the audit hook did not report")
    return unexplained


_NETWORK_TEXT = {"network": "network traffic", "bind": "a socket bound", "listen": "a socket listening"}


def _address_reported(effect: Effect, reported: list[dict], *, resolved: bool = False) -> bool:
    """The exact address the hook reported for a connect or a datagram; binds and listens
    against the hook's binds. ``resolved``: without isolation names do resolve (the host's DNS),
    so a host name the hook reported with the same port explains the address too."""
    operations = ("bind",) if effect.kind in ("bind", "listen") else ("connect", "sendto", "sendmsg")
    for event in reported:
        if event.get("operation", "connect") not in operations:
            continue
        target = str(event.get("target", ""))
        if target == effect.target or _same_address(target, effect.target):
            return True
        host, _, port = target.rpartition(":")
        if resolved and port == effect.target.rpartition(":")[2] and not _ip_literal(host):
            return True
        if effect.kind == "listen" and effect.target.startswith("socket "):  # bound implicitly
            return True
    return False


def _ip_literal(host: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _same_address(reported: str, traced: str) -> bool:
    """``::1:443`` and ``0:0:0:0:0:0:0:1:443`` (or an IPv4 written another way) are one address."""
    import ipaddress

    host, _, port = reported.rpartition(":")
    traced_host, _, traced_port = traced.rpartition(":")
    if port != traced_port:
        return False
    try:
        return ipaddress.ip_address(host.strip("[]")) == ipaddress.ip_address(traced_host.strip("[]"))
    except ValueError:
        return False


def _report_writers(trace: Trace) -> list[str]:
    """The harness's report pipe is close-on-exec: only the harness's interpreter, and the
    copies of it ``fork`` makes (whose inherited hook reports too), write to it. A program
    executed in the tree that writes to it (its descriptor kept or duplicated on purpose)
    writes records the harness did not."""
    programs = {e.pid: e for e in trace.of_kind("exec") if not e.failed}
    found, named = [], set()
    for write in trace.of_kind("report"):
        pid = write.pid
        while pid in trace.threads:  # a thread writes for its process
            pid = trace.parents[pid]
        ancestor = next((p for p in _lineage(pid, trace.parents) if p in programs), 0)
        if ancestor and ancestor not in named:
            named.add(ancestor)
            found.append(f"the report channel written by {programs[ancestor].describe()}, not by the harness")
    return found


def _lineage(pid: int, parents: dict[int, int]) -> list[int]:
    lineage: list[int] = []
    while pid and pid not in lineage:
        lineage.append(pid)
        pid = parents.get(pid, 0)
    return lineage


def _end_of_run(trace: Trace, records: list[dict], canary: str) -> list[str]:
    """The harness opens its canary path just before its end record, and its hook reports that
    open: the tracer's sight of it shows the harness reached its end; its absence from the
    records, that the hook had stopped reporting."""
    if not canary:
        return []
    seen = [e for e in trace.of_kind("canary") if e.target == CANARY + canary and e.pid == trace.harness_pid]
    recorded = any(r.get("type") == "canary" and r.get("nonce") == canary for r in records)
    if not trace.started:
        return ["the system-call trace does not show the harness starting: the run was not observed"]
    found = []
    if seen and not recorded:
        found.append("the audit hook stopped reporting: the harness's end-of-run check went unrecorded")
    if recorded and not seen:
        found.append("an end-of-run check record the harness's process did not make")
    if any(r.get("type") == "result" for r in records) and not seen:
        found.append("an end record, but the tracer never saw the harness reach its end")
    return found
