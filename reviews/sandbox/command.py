"""The command that starts the harness: in bubblewrap, or on a development machine without it.

Under bubblewrap (``bwrap_argv``) the sandbox sees nothing of the host but read-only system paths,
the Python installation, the plugin and its environment; no network, a PID namespace of its own
and a private /tmp. Without it (``_unisolated``, development only) the plugin, its environment and
the harness are copied where the sandbox user can read them. Either way the interpreter runs the
harness as bytecode compiled once per machine (``compiled_harness``).
"""

import functools
import hashlib
import os
import py_compile
import shutil
import subprocess
import sys
from pathlib import Path

from django.conf import settings

from .records import Limits, SandboxError

HARNESS = Path(__file__).with_name("harness.py")
INSIDE = Path("/sandbox")
ENV_INSIDE, PLUGIN_INSIDE, HARNESS_INSIDE = INSIDE / "env", INSIDE / "plugin", INSIDE / "harness.pyc"
PRIVATE_TMP = "/tmp"  # noqa: S108 - a tmpfs of the sandbox's own, sized by the tmp_mb limit
# isolated mode, no bytecode written, and no site until the harness has set the limits (harness.py)
PYTHON_FLAGS = ("-I", "-S", "-B")


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
