"""Running the harness on a plugin: in bubblewrap when the machine has it, and watched from outside.

Inside, the harness sets the resource limits and drops to the sandbox user before the plugin's
first line runs. Outside, the runner enforces what the kernel cannot: the wall clock and the
amount of output. It reads the harness's records as they arrive, so a plugin killed half-way
still leaves what it did on record.

``sandbox_run`` is the entry point: the command comes from command.py, the watching from
supervision.py, the kernel's figures from measure.py, and the run's record, with what it shows,
from records.py.
"""

import json
import os
import secrets
import tempfile
from pathlib import Path

from django.conf import settings

from . import tracer
from .command import ENV_INSIDE, PLUGIN_INSIDE, PYTHON_FLAGS, _environment, _unisolated, bwrap_argv, isolation_available
from .records import Limits, SandboxError, SandboxRun
from .supervision import Driver, _watch

# What the checks (reviews/checks/behaviour.py, performance.py) import from here.
__all__ = ["ENV_INSIDE", "PLUGIN_INSIDE", "Limits", "SandboxError", "SandboxRun", "isolation_available", "sandbox_run"]

PLACEHOLDER = "warden-sandbox-placeholder"


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


def _user() -> dict:
    """With or without bubblewrap, a worker running as root runs plugin code as the sandbox user;
    without bubblewrap, a worker that is not root (and so cannot) does not run it (sandbox_run)."""
    if os.getuid() != 0:
        return {}
    # One of WARDEN_SANDBOX_UIDS consecutive users, at random: concurrent runs (other workers,
    # another installation's tests) then rarely share one user's process limit.
    uid = settings.WARDEN_SANDBOX_UID + secrets.randbelow(settings.WARDEN_SANDBOX_UIDS)
    return {"uid": uid, "gid": uid}
