"""Seconds for bandit and GuardDog on a generated ~5,000-line plugin: each tool run directly on the
directory (the baseline) against the same tool through Warden's wrapper (ratio wrapper/direct).

The wrapper adds process set-up (an ini file, placeholder lists), parsing and mapping; the ratio says
what that costs. For GuardDog the direct baseline gets the same placeholder lists, so both do the same
work; the "default environment" line is GuardDog as shipped, which first tries to refresh its
typosquatting lists over the network (on a machine without network, it fails fast or hangs).

    .venv/bin/python bench/bench_tools.py [--repeat 5] [--lines 5000]
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.make_plugin import count_lines, make_plugin
from reviews.checks.bandit_scan import run_bandit
from reviews.checks.guarddog_scan import offline_environment, run_guarddog


def timed(actions: list[Callable[[], object]], repeat: int) -> list[list[float]]:
    """Wall-clock seconds of ``repeat`` runs of each action, after one warm-up run of each (disk
    cache, .pyc). The actions take turns, so load from other processes falls on all of them alike."""
    for action in actions:
        action()
    seconds: list[list[float]] = [[] for _ in actions]
    for _ in range(repeat):
        for action, samples in zip(actions, seconds, strict=True):
            started = time.perf_counter()
            action()
            samples.append(time.perf_counter() - started)
    return seconds


def direct(argv: list[str], env: dict[str, str] | None = None) -> Callable[[], object]:
    """The tool as an operator would run it by hand; output discarded, failure is fatal."""

    def run() -> object:
        return subprocess.run(argv, env=env, capture_output=True, check=False)  # noqa: S603

    return run


def report(label: str, seconds: list[float], baseline: list[float] | None = None) -> None:
    median = statistics.median(seconds)
    ratio = f"   ratio {median / statistics.median(baseline):.2f}" if baseline else ""
    print(f"  {label:<44} median {median:6.3f} s   min {min(seconds):6.3f} s{ratio}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--lines", type=int, default=5000)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="warden-bench-") as scratch:
        plugin = make_plugin(Path(scratch) / "plugin", lines=options.lines)
        lines, modules = count_lines(plugin)
        permissions = tomllib.loads((plugin / "plugin.toml").read_text())["permissions"]
        cache = Path(scratch) / "guarddog-lists"
        cache.mkdir()
        offline = offline_environment(cache)
        print(f"plugin: {lines} lines in {modules} modules; {options.repeat} runs each, after a warm-up")

        bandit_argv = [sys.executable, "-m", "bandit", "-r", str(plugin), "-f", "json", "-q"]
        bandit_direct, bandit_wrapped = timed([direct(bandit_argv), lambda: run_bandit(plugin)], options.repeat)
        print("bandit")
        report("direct: python -m bandit -r DIR -f json", bandit_direct)
        report("wrapper: run_bandit(DIR)", bandit_wrapped, bandit_direct)

        guarddog_argv = [sys.executable, "-m", "guarddog", "pypi", "scan", str(plugin), "--output-format", "json"]
        guarddog_shipped, guarddog_direct, guarddog_wrapped = timed(
            [
                direct(guarddog_argv, dict(os.environ)),
                direct(guarddog_argv, offline),
                lambda: run_guarddog(plugin, permissions),
            ],
            options.repeat,
        )
        print("guarddog")
        report("direct, default environment (tries network)", guarddog_shipped)
        report("direct: guarddog pypi scan DIR (offline lists)", guarddog_direct)
        report("wrapper: run_guarddog(DIR, permissions)", guarddog_wrapped, guarddog_direct)

        total = statistics.median(bandit_wrapped) + statistics.median(guarddog_wrapped)
        print(f"sum of both wrappers: {total:.3f} s")


if __name__ == "__main__":
    main()
