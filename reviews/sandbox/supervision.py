"""Watching the sandboxed process from outside, to enforce what the kernel cannot.

``_watch`` starts the command and stops the plugin at the wall clock or past the output limit. It
reads the harness's records as they arrive (``_drain``), so a plugin killed half-way still leaves
what it did on record; drives the load test from the trusted side (``Driver``); and, once the
process is gone, waits for the sandbox's PID namespace to end, so that nothing outlives the run.
"""

import contextlib
import os
import select
import selectors
import signal
import subprocess
import time

from .measure import SAMPLE_SECONDS, _children, _measure, _Sampler
from .records import Limits, SandboxError, SandboxRun, _limit_from_exit, _parse, _reported_contradicts_kernel

MAX_RECORD_BYTES = 4 * 1024 * 1024


def _watch(
    argv, env, read, write, limits: Limits, isolated: bool, *, cwd: str, driver: "Driver | None", control,
    traced: bool = False,
) -> SandboxRun:  # fmt: skip
    run = SandboxRun(isolation="bubblewrap" if isolated else "none")
    started = time.perf_counter()
    process = subprocess.Popen(  # noqa: S603 - argv is built here, the plugin only gets its own config
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        pass_fds=(write, control[0]),
        env=env,
        cwd=cwd,
        start_new_session=True,
    )
    run.pid = process.pid
    run.tracer_pid = process.pid if traced else 0
    os.close(write)
    os.close(control[0])
    try:
        run.limit = _drain(process, read, run, limits, started, driver, control[1], control[0])
        run.limit = _reap(process, run, limits, started) or run.limit
    finally:
        if process.returncode is None:
            _kill(process)
            _reap(process, run, limits, started)
        process.stdout.close()  # type: ignore[union-attr]
        _await_namespace_end(run)
    run.wall_ms = (time.perf_counter() - started) * 1000
    run.exit_code = process.returncode
    if not run.limit and not run.of_type("started"):  # bwrap or the harness failed: not the plugin's doing
        output = run.output.decode("utf-8", "replace").strip()[-500:]
        raise SandboxError(f"The sandbox did not start (exit status {run.exit_code}): {output or 'no output'}")
    run.limit = run.limit or _limit_from_exit(run, isolated)
    if driver is not None:
        run.rounds = driver.rounds
        run.forged += driver.forged
    run.forged += _reported_contradicts_kernel(run)
    return run


def _reap(process: subprocess.Popen, run: SandboxRun, limits: Limits, started: float) -> str:
    """Wait for the child with ``wait4``: its rusage is the kernel's account of CPU time and peak
    memory of every process of the sandbox (each is reaped by bwrap, or by its parent), which
    nothing inside can alter. A child that closed its pipes but lingers is killed at the wall clock."""
    if process.returncode is not None:
        return ""
    limit = ""
    with contextlib.suppress(OSError):
        pidfd = os.pidfd_open(process.pid)
        try:
            remaining = max(0.0, limits.wall_seconds - (time.perf_counter() - started))
            if not select.select([pidfd], [], [], remaining)[0]:
                _kill(process)
                limit = "wall-clock"
        finally:
            os.close(pidfd)
    _, status, _usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return limit


class Driver:
    """The trusted side of the load test: the runner, outside the sandbox, sends each call's id
    over a pipe and times it until the harness's reply arrives, keeping exactly ``threads``
    calls in flight. Latency and throughput come from these clocks; a reply to a call never
    asked for (or asked for once and answered twice) is a forged measurement."""

    def __init__(self, fd: int, plan: dict) -> None:
        self.fd, self.calls = fd, plan["calls"]
        self.levels = list(plan["concurrency"]) * plan.get("rounds", 1)
        self.rounds: list[dict] = []
        self.forged: list[str] = []
        self.pending: dict[int, float] = {}
        self.next_id = 1
        self.level: dict | None = None

    def on_record(self, record: dict, now: float) -> None:
        kind = record.get("type")
        if kind == "level":
            if self.level is not None or not self.levels or record["threads"] != self.levels[0]:
                self.forged.append(f"a load level the runner did not ask for ({record['threads']} threads)")
                return
            threads = self.levels.pop(0)
            self.level = {"threads": threads, "begun": now, "latencies_ms": [], "sent": 0}
            for _ in range(min(threads, self.calls)):
                self._send(now)
        elif kind == "reply":
            sent = self.pending.pop(record["id"], None)
            if sent is None or self.level is None:
                self.forged.append(f"a reply to call {record['id']}, which was not in flight")
                return
            level = self.level
            level["latencies_ms"].append((now - sent) * 1000)
            if level["sent"] < self.calls:
                self._send(now)
            elif not self.pending:
                self.rounds.append(
                    {
                        "threads": level["threads"],
                        "latencies_ms": level["latencies_ms"],
                        "seconds": now - level["begun"],
                    }
                )
                self.level = None
                os.write(self.fd, b"0000000\n" * level["threads"])  # one stop per worker thread
        elif kind == "round":
            self.forged.append("round figures written from inside the plugin's process")

    def _send(self, now: float) -> None:
        call = self.next_id
        self.next_id += 1
        self.level["sent"] += 1  # type: ignore[index]
        self.pending[call] = time.perf_counter()
        os.write(self.fd, b"%07d\n" % call)


def _await_namespace_end(run: SandboxRun, *, patience: float = 5.0) -> None:
    """The sandbox's init, once killed, kills and waits for every process of its namespace
    before it dies: wait (briefly) for it to be gone, so that nothing outlives the run."""
    if not run.init_pid:
        return
    deadline = time.perf_counter() + patience
    while time.perf_counter() < deadline:
        try:
            with open(f"/proc/{run.init_pid}/stat") as stat:
                state = stat.read().rsplit(")", 1)[1].split()[0]
            if state in ("Z", "X") or os.readlink(f"/proc/{run.init_pid}/ns/pid") != run.pid_namespace:
                return
        except OSError:
            return
        time.sleep(0.005)


def _pid_namespace(pid: int) -> tuple[str, int]:
    """The PID namespace of the first descendant of ``pid`` that is in another one than ``pid``."""
    with contextlib.suppress(OSError):
        own = os.readlink(f"/proc/{pid}/ns/pid")
        queue = [pid]
        while queue:
            for child in _children(queue.pop()):  # every thread's children
                with contextlib.suppress(OSError):
                    namespace = os.readlink(f"/proc/{child}/ns/pid")
                    if namespace != own:
                        return namespace, child
                    queue.append(child)
    return "", 0


def _drain(
    process: subprocess.Popen,
    read: int,
    run: SandboxRun,
    limits: Limits,
    started: float,
    driver: "Driver | None",
    control: int,
    control_fd: int,
) -> str:
    """Read output and records until both close; stop the plugin at the first limit it crosses."""
    output_cap = limits.output_kb * 1024
    pending = b""
    record_bytes = 0
    sample = _Sampler(process.pid, run)
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ, "output")  # type: ignore[arg-type]
        selector.register(read, selectors.EVENT_READ, "records")
        while selector.get_map():
            remaining = limits.wall_seconds - (time.perf_counter() - started)
            if remaining <= 0:
                _kill(process)
                return "wall-clock"
            sample()
            for key, _ in selector.select(timeout=min(remaining, SAMPLE_SECONDS)):
                chunk = os.read(key.fd, 65536)
                now = time.perf_counter()
                if not chunk:
                    selector.unregister(key.fileobj)
                elif key.data == "output":
                    run.output_bytes += len(chunk)
                    run.output += chunk[: max(0, output_cap - len(run.output))]
                    if run.output_bytes > output_cap:
                        _kill(process)
                        return "output"
                else:
                    record_bytes += len(chunk)
                    if record_bytes > MAX_RECORD_BYTES:
                        _kill(process)
                        return "output"
                    pending += chunk
                    *lines, pending = pending.split(b"\n")
                    for line in lines:
                        if not line.strip():
                            continue
                        record = _parse(line)
                        if record["type"] in ("reply", "level") or (driver is not None and record["type"] == "round"):
                            if driver is not None:
                                driver.on_record(record, now)
                            else:
                                run.forged.append(f"a {record['type']} record in a run the runner did not drive")
                            if record["type"] != "round":
                                continue
                        if record["type"] == "started" and not run.pid_namespace and run.isolation == "bubblewrap":
                            run.pid_namespace, run.init_pid = _pid_namespace(process.pid)
                        elif record["type"] == "result":
                            if not _measure(process.pid, run, control_fd):
                                run.forged.append(
                                    "an end record the harness did not write: its process was not waiting for "
                                    "the go-ahead to exit (exited early, or elsewhere)"
                                )
                            with contextlib.suppress(OSError):
                                os.write(control, b"0000000\n")  # the go-ahead to exit
                        run.records.append(record)
    return ""


def _kill(process: subprocess.Popen) -> None:
    """The whole process group; with bwrap, the PID namespace dies with its first process."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
