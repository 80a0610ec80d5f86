"""Running the harness on a plugin: in bubblewrap when the machine has it, and watched from outside.

Inside, the harness sets the resource limits and drops to the sandbox user before the plugin's
first line runs. Outside, this module enforces what the kernel cannot: the wall clock and the
amount of output. It reads the harness's records as they arrive, so a plugin killed half-way
still leaves what it did on record.
"""

import collections
import contextlib
import functools
import hashlib
import json
import os
import py_compile
import secrets
import select
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings

from . import tracer

HARNESS = Path(__file__).with_name("harness.py")
INSIDE = Path("/sandbox")
ENV_INSIDE, PLUGIN_INSIDE, HARNESS_INSIDE = INSIDE / "env", INSIDE / "plugin", INSIDE / "harness.pyc"
PRIVATE_TMP = "/tmp"  # noqa: S108 - a tmpfs of the sandbox's own, sized by the tmp_mb limit
PLACEHOLDER = "warden-sandbox-placeholder"
# isolated mode, no bytecode written, and no site until the harness has set the limits (harness.py)
PYTHON_FLAGS = ("-I", "-S", "-B")
MAX_RECORD_BYTES = 4 * 1024 * 1024
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


@functools.cache
def isolation_available() -> bool:
    """bwrap is installed, this machine lets it create namespaces, and it is recent enough
    (0.7 or later: ``--size`` for the private /tmp)."""
    binary = shutil.which(settings.WARDEN_SANDBOX_BWRAP)
    if binary is None:
        return False
    probe = subprocess.run(  # noqa: S603 - a fixed argument list
        [
            binary,
            "--ro-bind",
            "/",
            "/",
            "--unshare-pid",
            "--unshare-net",
            "--size",
            "1048576",
            "--tmpfs",
            PRIVATE_TMP,
            "true",
        ],
        capture_output=True,
        timeout=30,
        check=False,
    )
    return probe.returncode == 0


def sandbox_run(
    *,
    mode: str,
    plugin_root: Path,
    environment: Path,
    entrypoint: str,
    benchmark: str = "",
    load: dict | None = None,
    limits: Limits | None = None,
    variables: list[str] | tuple[str, ...] = (),
    native: bool = False,
    traced: bool = False,
) -> SandboxRun:
    """Run the harness in ``mode`` on the plugin unpacked at ``plugin_root`` with the virtual
    environment ``environment``; refuse when isolation is required and unavailable.

    ``variables`` (the manifest's declared environment) are set to a placeholder, as a host
    would set them to real values, so that a plugin reading its configuration still starts.
    ``traced``: run it under the system-call tracer (tracer.py) when this machine has one.
    """
    limits = limits or Limits.configured()
    isolated = isolation_available()
    if not isolated and not settings.WARDEN_SANDBOX_ALLOW_UNISOLATED:
        raise SandboxError(
            "bubblewrap (bwrap) is not available on this worker: plugin code was not run. Install the "
            "bubblewrap package on the worker (make sandbox); only a development machine may set "
            "WARDEN_SANDBOX_ALLOW_UNISOLATED, and every such run carries a 'ran without isolation' finding."
        )
    if not isolated and not _user():
        raise SandboxError(
            "bubblewrap (bwrap) is not available on this worker, and without it plugin code runs only as the "
            f"sandbox user (uid {settings.WARDEN_SANDBOX_UID}); this worker is not root and cannot become that "
            "user: plugin code was not run (never as the worker's own user, with its files and network). "
            "Install bubblewrap on the worker (make sandbox)."
        )
    read, write = os.pipe()
    # runner -> harness: the load's call ids, and the go-ahead to exit once the runner has
    # measured the process at the harness's end record
    requests = os.pipe()
    config = {
        "mode": mode,
        "report_fd": write,
        "limits": limits.inside(),
        "entrypoint": entrypoint,
        "benchmark": benchmark or None,
        "load": load,
        "request_fd": requests[0],
        "plugin_root": str(PLUGIN_INSIDE if isolated else plugin_root),
        "native": native,  # the manifest declares native code: its extension modules may load
        "canary": secrets.token_hex(8),
        **_user(),
    }
    traced = traced and tracer.tracer_available()
    with (
        tempfile.TemporaryDirectory(prefix="warden-sandbox-") as scratch,
        tempfile.TemporaryDirectory(prefix="warden-trace-") as private,  # 0700: out of the sandbox's reach
    ):
        if isolated:
            argv = bwrap_argv(plugin_root=plugin_root, environment=environment, limits=limits)
            env = _environment(home=Path("/home/sandbox"))
        else:
            argv, config["plugin_root"] = _unisolated(Path(scratch), plugin_root, environment)
            env = {"PYTHONHASHSEED": "0", "MALLOC_ARENA_MAX": "2"}  # nothing else: an empty environment
        env.update({name: PLACEHOLDER for name in variables if name not in env})
        driver = Driver(requests[1], load) if mode == "load" and load else None
        output = Path(private) / "trace"
        report_pipe = f"pipe:[{os.fstat(read).st_ino}]"  # as strace names the report channel
        try:
            run = _watch(
                [*(tracer.tracer_argv(output) if traced else []), *argv, json.dumps(config)], env, read, write,
                limits, isolated, cwd=scratch, driver=driver, control=requests, traced=traced,
            )  # fmt: skip
        finally:
            os.close(read)
            os.close(requests[1])
        run.canary = config["canary"] if mode == "behaviour" else ""
        if traced and output.is_file():
            run.trace = tracer.parse(
                output, harness_argv=(*PYTHON_FLAGS, argv[-1]), report_pipe=report_pipe, isolated=isolated
            )
        return run


def _unisolated(scratch: Path, plugin_root: Path, environment: Path) -> tuple[list[str], str]:
    """Development only: no namespaces, so the plugin, its environment (when the sandbox user
    cannot reach it where it is) and the harness are copied where that user can read them."""
    base = Path(os.path.realpath(sys.base_prefix))
    if not _reachable(base):
        raise SandboxError(
            f"Without bubblewrap, plugin code runs as the sandbox user (uid {settings.WARDEN_SANDBOX_UID}), "
            f"who cannot read the Python installation at {base}: plugin code was not run (never as root)."
        )
    scratch.chmod(0o755)
    plugin = scratch / "plugin"
    shutil.copytree(plugin_root, plugin, symlinks=True)
    if not _reachable(environment):
        environment = Path(shutil.copytree(environment, scratch / "env", symlinks=True))
    harness = scratch / "harness.pyc"
    shutil.copyfile(compiled_harness(name=str(HARNESS)), harness)
    for path in (plugin, harness, *plugin.rglob("*")):
        if not path.is_symlink():
            path.chmod(0o755 if path.is_dir() else 0o644)
    return [str(environment / "bin" / "python"), *PYTHON_FLAGS, str(harness)], str(plugin)


def _reachable(path: Path) -> bool:
    """Every directory above ``path`` lets others through."""
    return all(os.stat(parent).st_mode & 0o001 for parent in [*path.parents, path])


def bwrap_argv(*, plugin_root: Path, environment: Path, limits: Limits) -> list[str]:
    """The bubblewrap command: nothing of the host but read-only system paths, the Python
    installation, the plugin and its environment; no network; own PID namespace; private /tmp."""
    argv = [
        settings.WARDEN_SANDBOX_BWRAP,
        "--unshare-ipc",
        "--unshare-pid",
        "--unshare-net",
        "--unshare-uts",
        "--unshare-cgroup-try",
        "--die-with-parent",
        "--new-session",
        "--cap-drop",
        "ALL",
    ]
    if os.getuid() == 0:  # the harness needs these two to drop to the sandbox user, then has none
        argv += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    argv += ["--ro-bind", "/usr", "/usr"]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64"):
        if os.path.islink(top):
            argv += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            argv += ["--ro-bind", top, top]
    if os.path.exists("/etc/ld.so.cache"):
        argv += ["--ro-bind", "/etc/ld.so.cache", "/etc/ld.so.cache"]
    base = os.path.realpath(sys.base_prefix)
    if not base.startswith("/usr/"):
        argv += [*_open_directories(Path(base).parent), "--ro-bind", base, base]
    argv += [
        *_open_directories(INSIDE),
        "--ro-bind", str(environment), str(ENV_INSIDE),
        "--ro-bind", str(plugin_root), str(PLUGIN_INSIDE),
        "--ro-bind", str(compiled_harness(name=str(HARNESS_INSIDE))), str(HARNESS_INSIDE),
        "--proc", "/proc",
        "--dev", "/dev",
        "--perms", "1777", "--size", str(limits.tmp_mb * 1024 * 1024), "--tmpfs", PRIVATE_TMP,
        "--chdir", PRIVATE_TMP,
    ]  # fmt: skip
    return [*argv, str(ENV_INSIDE / "bin" / "python"), *PYTHON_FLAGS, str(HARNESS_INSIDE)]


def compiled_harness(*, name: str) -> Path:
    """The harness as bytecode, compiled once per machine: a script is compiled afresh at every
    start, which would add milliseconds to every startup figure. ``name`` is the file name its
    code objects carry (where it is seen from inside), which the harness tells its frames by."""
    source = HARNESS.read_bytes()
    key = hashlib.sha256(source + name.encode() + sys.version.encode()).hexdigest()[:20]
    target = Path(settings.WARDEN_WORK_DIR) / "harness" / f"harness-{key}.pyc"
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        scratch = target.with_suffix(f".{os.getpid()}.tmp")
        py_compile.compile(
            str(HARNESS), cfile=str(scratch), dfile=name, doraise=True,
            invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
        )  # fmt: skip
        scratch.chmod(0o644)
        scratch.replace(target)  # atomic: a concurrent run sees the old file or the new one
    return target


def _open_directories(path: Path) -> list[str]:
    """bwrap makes missing mount-point parents 0700, which the sandbox user cannot enter."""
    argv: list[str] = []
    for directory in [*reversed(path.parents[:-1]), path]:
        argv += ["--perms", "0755", "--dir", str(directory)]
    return argv


def _user() -> dict:
    """With or without bubblewrap, a worker running as root runs plugin code as the sandbox user;
    without bubblewrap, a worker that is not root (and so cannot) does not run it (sandbox_run)."""
    if os.getuid() != 0:
        return {}
    # One of WARDEN_SANDBOX_UIDS consecutive users, at random: concurrent runs (other workers,
    # another installation's tests) then rarely share one user's process limit.
    uid = settings.WARDEN_SANDBOX_UID + secrets.randbelow(settings.WARDEN_SANDBOX_UIDS)
    return {"uid": uid, "gid": uid}


def _environment(*, home: Path) -> dict[str, str]:
    """A clean environment: nothing of the worker's (no secrets, no DATABASE_URL) leaks in."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "TMPDIR": PRIVATE_TMP,
        "PYTHONHASHSEED": "0",
        "MALLOC_ARENA_MAX": "2",  # glibc reserves 64 MiB of address space per arena otherwise
    }


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


def _kill(process: subprocess.Popen) -> None:
    """The whole process group; with bwrap, the PID namespace dies with its first process."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


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
