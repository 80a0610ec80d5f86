"""The kernel's account of a run, read from /proc, which nothing inside the sandbox can alter.

CPU time and peak memory of every process of the sandbox, taken at the harness's end record
(``_measure``) and sampled while the plugin runs (``_Sampler``); and whether the harness's own
process is the one waiting for the runner's go-ahead to exit.
"""

import collections
import contextlib
import os
import time
from dataclasses import dataclass

from .records import SandboxRun

TICK_MS = 1000 / os.sysconf("SC_CLK_TCK")


READ_SYSCALLS = ("0", "63")  # read(2) on x86_64, on aarch64


def _waiting_for_go_ahead(pids: list[int], control_fd: int, *, patience: float = 0.5) -> bool:
    """The harness, having written its end record, blocks in read(2) on the control pipe until
    the runner lets it exit: a process that exits instead (or is elsewhere) did not write it."""
    deadline = time.perf_counter() + patience
    while pids:
        for pid in pids:
            with contextlib.suppress(OSError, ValueError, IndexError), open(f"/proc/{pid}/syscall") as syscall:
                fields = syscall.read().split()
                if fields[0] in READ_SYSCALLS and int(fields[1], 16) == control_fd:
                    return True
        if time.perf_counter() > deadline:
            return False
        time.sleep(0.0005)
    return False


@dataclass
class _Process:
    """One process of the run, as /proc shows it."""

    pid: int
    parent: int
    own_ms: float = 0.0  # its own CPU time, every thread's, finished ones included
    reaped_ms: float = 0.0  # the CPU time of the children it reaped (cutime + cstime)
    peak_kb: int = 0  # VmHWM (0 for a zombie: its memory is gone)
    rss_kb: int = 0  # VmRSS
    python: bool = False


def _process(pid: int, parent: int) -> _Process | None:
    """CPU: each live thread's ``schedstat`` (nanoseconds), or the process's ``stat`` ticks (which
    also count its finished threads) when larger; reaped children apart."""
    current = _Process(pid, parent)
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        utime, stime, cutime, cstime = (int(value) for value in fields[11:15])
        live = 0.0
        for task in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError, ValueError), open(f"/proc/{pid}/task/{task}/schedstat") as sched:
                live += int(sched.read().split()[0]) / 1e6
        current.own_ms, current.reaped_ms = max((utime + stime) * TICK_MS, live), (cutime + cstime) * TICK_MS
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    current.peak_kb = int(line.split()[1])
                elif line.startswith("VmRSS:"):
                    current.rss_kb = int(line.split()[1])
                    break
        current.python = "python" in os.path.basename(_program(pid))
    except (OSError, ValueError, IndexError):
        return None  # gone meanwhile: reaped, its time is in its parent's
    return current


def _program(pid: int) -> str:
    """The program the process runs: ``exe``, which the process cannot change short of exec
    (its ``cmdline`` it can overwrite); ``cmdline``'s first word where ``exe`` may not be read."""
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except PermissionError:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return os.fsdecode(cmdline.read().split(b"\0", 1)[0])
    except OSError:
        return ""  # a zombie runs nothing


def _children(pid: int) -> list[int]:
    """The children of every thread of ``pid``: a child started from a thread other than the
    main one is listed under that thread only."""
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError, ValueError), open(f"/proc/{pid}/task/{task}/children") as children:
                found += [int(child) for child in children.read().split()]
    return found


def _tree(pid: int, run: SandboxRun) -> tuple[list[_Process], _Process | None, set[int]]:
    """Every process under the runner's child, parents first; the harness's process (the first
    interpreter: nothing the plugin starts comes before it); and the harness's ancestors
    (bubblewrap's processes, the sandbox's and not the plugin's). The tracer is left out.
    Children are read before their parents: one reaped in between is then counted twice (in
    itself and in its parent's ``cutime``), never missed."""
    order: list[tuple[int, int]] = []
    queue, seen = collections.deque([(pid, 0)]), set()
    while queue:
        current, parent = queue.popleft()
        if current in seen:
            continue
        seen.add(current)
        queue += [(child, current) for child in _children(current)]
        if current != run.tracer_pid:  # outside the sandbox: not the plugin's cost
            order.append((current, parent))
    processes = [found for current, parent in reversed(order) if (found := _process(current, parent)) is not None]
    processes.reverse()
    harness = next((p for p in processes if p.python), None)
    ancestors: set[int] = set()
    if harness is not None:
        parents = {p.pid: p.parent for p in processes}
        parent = harness.parent
        while parent in parents:
            ancestors.add(parent)
            parent = parents[parent]
    return processes, harness, ancestors


SAMPLE_SECONDS = 0.02  # how often the runner samples the tree's memory while the plugin runs


class _Sampler:
    """The memory of the harness and of every process the plugin started, summed, sampled while
    the plugin runs: a child that exits before the end record still counts (its CPU time is in
    its parent's once reaped, its memory is gone with it). Light: once the harness is found (and
    with it bubblewrap's processes above it, which are not counted), each sample reads only
    ``statm`` and the children lists."""

    def __init__(self, pid: int, run: SandboxRun) -> None:
        self.pid, self.run = pid, run
        self.ancestors: set[int] | None = None
        self.due = time.perf_counter() + SAMPLE_SECONDS

    def __call__(self) -> None:
        if time.perf_counter() < self.due:
            return
        if self.ancestors is None:
            _, harness, ancestors = _tree(self.pid, self.run)
            if harness is not None:
                self.ancestors = ancestors | {self.run.tracer_pid}
        else:
            total, queue = 0, [self.pid]
            while queue:
                current = queue.pop()
                queue += _children(current)
                if current not in self.ancestors:
                    total += _resident_kb(current)
            self.run.peak_rss_kb = max(self.run.peak_rss_kb, total)
        self.due = time.perf_counter() + SAMPLE_SECONDS


PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


def _resident_kb(pid: int) -> int:
    """VmRSS, from ``statm`` (cheaper to read than ``status``)."""
    with contextlib.suppress(OSError, ValueError, IndexError), open(f"/proc/{pid}/statm") as statm:
        return int(statm.read().split()[1]) * PAGE_KB
    return 0


def _measure(pid: int, run: SandboxRun, control_fd: int) -> bool:
    """CPU time and peak memory of every process of the run, from the kernel's /proc, taken at
    the harness's end record while the harness waits for the runner's go-ahead to exit.
    Not wait4's rusage: bubblewrap does not reap the sandbox's init, and ``ru_maxrss``
    carries over ``exec`` the size of the worker process the child was forked from.
    CPU: the sum over the tree, each process's own time and its reaped children's (so what
    exited early is counted where it was reaped: an orphan by the sandbox's init). Memory: the
    sum of the peaks (``VmHWM``) of the harness and of every process the plugin started, or the
    largest sum sampled while it ran when larger. The harness's own figures are kept apart, to
    be compared with what it reports. Returns whether the harness's process is waiting for the
    go-ahead."""
    processes, harness, ancestors = _tree(pid, run)
    run.cpu_ms = sum(p.own_ms + p.reaped_ms for p in processes)
    run.peak_rss_kb = max(run.peak_rss_kb, sum(p.peak_kb for p in processes if p.pid not in ancestors))
    if harness is None:
        return False
    run.harness_cpu_ms, run.harness_reaped_cpu_ms, run.harness_rss_kb = (
        harness.own_ms,
        harness.reaped_ms,
        harness.peak_kb,
    )
    return _waiting_for_go_ahead([harness.pid], control_fd)
