"""Running the harness on a plugin: in bubblewrap when the machine has it, and watched from outside.

Inside, the harness sets the resource limits and drops to the sandbox user before the plugin's
first line runs. Outside, this module enforces what the kernel cannot: the wall clock and the
amount of output. It reads the harness's records as they arrive, so a plugin killed half-way
still leaves what it did on record.
"""

import contextlib
import functools
import hashlib
import json
import os
import py_compile
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
) -> SandboxRun:
    """Run the harness in ``mode`` on the plugin unpacked at ``plugin_root`` with the virtual
    environment ``environment``; refuse when isolation is required and unavailable.

    ``variables`` (the manifest's declared environment) are set to a placeholder, as a host
    would set them to real values, so that a plugin reading its configuration still starts.
    """
    limits = limits or Limits.configured()
    isolated = isolation_available()
    if not isolated and settings.SANDBOX_REQUIRE_ISOLATION:
        raise SandboxError(
            "bubblewrap (bwrap) is not available on this worker and SANDBOX_REQUIRE_ISOLATION is on: "
            "plugin code was not run. Install the bubblewrap package on the worker."
        )
    read, write = os.pipe()
    config = {
        "mode": mode,
        "report_fd": write,
        "limits": limits.inside(),
        "entrypoint": entrypoint,
        "benchmark": benchmark or None,
        "load": load,
        "plugin_root": str(PLUGIN_INSIDE if isolated else plugin_root),
        **(_user() if isolated else {}),  # unisolated, the plugin's files may not be readable by another user
    }
    with tempfile.TemporaryDirectory(prefix="warden-sandbox-") as scratch:
        argv = (
            bwrap_argv(plugin_root=plugin_root, environment=environment, limits=limits)
            if isolated
            else [str(environment / "bin" / "python"), *PYTHON_FLAGS, str(compiled_harness(name=str(HARNESS)))]
        )
        env = _environment(home=Path("/home/sandbox") if isolated else Path(scratch))
        env.update({name: PLACEHOLDER for name in variables if name not in env})
        try:
            return _watch([*argv, json.dumps(config)], env, read, write, limits, isolated, cwd=scratch)
        finally:
            os.close(read)


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
    if os.getuid() != 0:
        return {}
    return {"uid": settings.WARDEN_SANDBOX_UID, "gid": settings.WARDEN_SANDBOX_UID}


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


def _watch(argv, env, read, write, limits: Limits, isolated: bool, *, cwd: str) -> SandboxRun:
    run = SandboxRun(isolation="bubblewrap" if isolated else "none")
    started = time.perf_counter()
    process = subprocess.Popen(  # noqa: S603 - argv is built here, the plugin only gets its own config
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        pass_fds=(write,),
        env=env,
        cwd=cwd,
        start_new_session=True,
    )
    os.close(write)
    try:
        run.limit = _drain(process, read, run, limits, started)
    finally:
        if process.poll() is None:
            _kill(process)
        process.wait()
        process.stdout.close()  # type: ignore[union-attr]
    run.wall_ms = (time.perf_counter() - started) * 1000
    run.exit_code = process.returncode
    if not run.limit and not run.of_type("started"):  # bwrap or the harness failed: not the plugin's doing
        output = run.output.decode("utf-8", "replace").strip()[-500:]
        raise SandboxError(f"The sandbox did not start (exit status {run.exit_code}): {output or 'no output'}")
    run.limit = run.limit or _limit_from_exit(run, isolated)
    return run


def _drain(process: subprocess.Popen, read: int, run: SandboxRun, limits: Limits, started: float) -> str:
    """Read output and records until both close; stop the plugin at the first limit it crosses."""
    output_cap = limits.output_kb * 1024
    pending = b""
    record_bytes = 0
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ, "output")  # type: ignore[arg-type]
        selector.register(read, selectors.EVENT_READ, "records")
        while selector.get_map():
            remaining = limits.wall_seconds - (time.perf_counter() - started)
            if remaining <= 0:
                _kill(process)
                return "wall-clock"
            for key, _ in selector.select(timeout=min(remaining, 1.0)):
                chunk = os.read(key.fd, 65536)
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
                    run.records.extend(_parse(line) for line in lines if line.strip())
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
    "result": lambda r: _number(r.get("cpu_ms")) and _number(r.get("peak_rss_kb")),
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
