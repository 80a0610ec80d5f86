"""The performance harness's cold-startup figure against timing ``python -c "import plugin"`` in
bubblewrap directly, same sandbox, same run (goal: the harness within 15 % of the direct figure).

Both start a fresh sandboxed interpreter that imports the same plugin (one that imports a stack of
standard-library modules, so the import is real work) and exit; the harness also sets its limits,
drops to the sandbox user, constructs the entrypoint and reports over its pipe. The runs take
turns in alternating order (direct then harness, harness then direct, ...) so that load from
other processes, and any advantage of going first, falls on both alike; medians of
``--repeat`` runs each.

    .venv/bin/python bench/bench_harness.py [--repeat 31]
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SCRATCH = Path(tempfile.mkdtemp(prefix="warden-bench-harness-"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.update({"DJANGO_SETTINGS_MODULE": "config.settings.base", "WARDEN_VAR_DIR": str(SCRATCH)})

import django  # noqa: E402

django.setup()

from reviews.sandbox import command, runner  # noqa: E402
from reviews.sandbox.environment import plugin_environment  # noqa: E402

PLUGIN = """\
import asyncio, decimal, email.mime.multipart, http.client, json, logging.handlers, xml.dom.minidom
import argparse, csv, sqlite3, statistics, uuid, zipfile


class Plugin:
    def __init__(self, host=None):
        self.host = host
"""


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=61)
    args = parser.parse_args()
    if not runner.isolation_available():
        print("bubblewrap is not available: nothing to compare.")
        return 1
    root = SCRATCH / "plugin"
    root.mkdir()
    (root / "benchplug.py").write_text(PLUGIN)
    environment = plugin_environment(requirements=[])
    limits = runner.Limits.configured()
    # The same sandbox, less the two capabilities the harness uses to drop to the sandbox user: the
    # plugin never runs with them (and a process holding them imports markedly slower).
    privileged = {"--cap-add", "CAP_SETUID", "CAP_SETGID"}
    sandbox = [
        a
        for a in command.bwrap_argv(plugin_root=root, environment=environment, limits=limits)[:-5]
        if a not in privileged
    ]
    direct_argv = [
        *sandbox,
        str(command.ENV_INSIDE / "bin" / "python"),
        "-I",
        "-B",
        "-c",
        f"import sys; sys.path.insert(0, '{command.PLUGIN_INSIDE}'); import benchplug",
    ]
    env = command._environment(home=Path("/home/sandbox"))

    def direct() -> float:
        started = time.perf_counter()
        subprocess.run(direct_argv, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603
        return (time.perf_counter() - started) * 1000

    ready: list[float] = []

    def harness() -> float:
        run = runner.sandbox_run(
            mode="startup", plugin_root=root, environment=environment, entrypoint="benchplug:Plugin"
        )
        assert run.result is not None, run.output
        ready.append(run.result["ready_ms"])
        return run.wall_ms

    direct(), harness()  # warm the page cache
    direct_ms, harness_ms = [], []
    for turn in range(args.repeat):  # A B, B A, ...: whoever goes first in a pair is not favoured
        if turn % 2:
            harness_ms.append(harness())
            direct_ms.append(direct())
        else:
            direct_ms.append(direct())
            harness_ms.append(harness())
    d, h = statistics.median(direct_ms), statistics.median(harness_ms)
    # each pair ran back to back: the median of their ratios cancels the machine's slow drifts
    ratio = statistics.median(b / a for a, b in zip(direct_ms, harness_ms, strict=True))
    print(f"startup, median of {args.repeat}: direct bwrap python -c 'import plugin' {d:.1f} ms")
    print(f"                       harness (startup_ms KPI)            {h:.1f} ms")
    print(f"                       of which import + construction      {statistics.median(ready):.1f} ms (in-process)")
    print(f"ratio of medians harness / direct: {h / d:.3f}")
    print(f"median ratio of back-to-back pairs: {ratio:.3f}  (goal: within 15 %, 0.85 to 1.15)")
    return 0 if 0.85 <= ratio <= 1.15 else 1


if __name__ == "__main__":
    raise SystemExit(main())
