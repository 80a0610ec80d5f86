"""The system-call tracer's overhead on the behaviour run: ``sandbox_run(mode="behaviour")``
with ``strace -f --seccomp-bpf`` around bubblewrap against the same run untraced, same plugin,
same process, back-to-back pairs whose order alternates (traced then untraced, untraced then
traced, ...); prints the medians and the median ratio traced / untraced of the pairs. The
plugin imports a stack of standard-library modules (many file opens, each a traced stop) and
its benchmark callable, called once, opens and writes files in /tmp, starts a process and
tries a connection, so every traced kind of call is exercised. The traced time includes
parsing the trace.

    .venv/bin/python bench/bench_tracer.py [--repeat 31]
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

SCRATCH = Path(tempfile.mkdtemp(prefix="warden-bench-tracer-"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.update({"DJANGO_SETTINGS_MODULE": "config.settings.base", "WARDEN_VAR_DIR": str(SCRATCH)})

import django  # noqa: E402

django.setup()

from reviews.sandbox import runner, tracer  # noqa: E402
from reviews.sandbox.environment import plugin_environment  # noqa: E402

PLUGIN = """\
import asyncio, decimal, email.mime.multipart, http.client, json, logging.handlers, xml.dom.minidom
import argparse, csv, socket, sqlite3, statistics, subprocess, uuid, zipfile


class Plugin:
    def __init__(self, host=None):
        self.host = host


def bench():
    for i in range(50):
        with open(f"/tmp/out-{i}.json", "w") as out:
            json.dump({"i": i}, out)
    subprocess.run(["true"], check=False)
    try:
        socket.create_connection(("10.0.0.1", 5432), timeout=0.1)
    except OSError:
        pass
"""


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=31)
    args = parser.parse_args()
    if not (runner.isolation_available() and tracer.tracer_available()):
        print("bubblewrap or strace is not available: nothing to compare.")
        return 1
    root = SCRATCH / "plugin"
    root.mkdir()
    (root / "benchplug.py").write_text(PLUGIN)
    environment = plugin_environment(requirements=[])
    calls: list[int] = []

    def behaviour(*, traced: bool) -> float:
        started = time.perf_counter()
        run = runner.sandbox_run(
            mode="behaviour", plugin_root=root, environment=environment, entrypoint="benchplug:Plugin",
            benchmark="benchplug:bench", traced=traced,
        )  # fmt: skip
        assert run.result is not None, run.output
        if traced:
            assert run.trace is not None and run.trace.started
            calls.append(len(run.trace.effects))
        return (time.perf_counter() - started) * 1000

    behaviour(traced=False), behaviour(traced=True)  # warm the page cache
    plain_ms, traced_ms = [], []
    for turn in range(args.repeat):  # A B, B A, ...: whoever goes first in a pair is not favoured
        if turn % 2:
            traced_ms.append(behaviour(traced=True))
            plain_ms.append(behaviour(traced=False))
        else:
            plain_ms.append(behaviour(traced=False))
            traced_ms.append(behaviour(traced=True))
    ratio = statistics.median(t / p for p, t in zip(plain_ms, traced_ms, strict=True))
    print(f"behaviour run, median of {args.repeat}: untraced {statistics.median(plain_ms):.1f} ms")
    print(f"                            traced   {statistics.median(traced_ms):.1f} ms")
    print(f"effects in the trace (median): {statistics.median(calls):.0f}")
    print(f"median ratio traced / untraced of back-to-back pairs: {ratio:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
