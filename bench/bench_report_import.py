"""A large SARIF log imported by a worker (``report_queue`` + ``report_import``) against the
same log imported in its request (``report_attach``): memory, transactions, time.

Three figures, each a ratio of two measurements in the same run:

- memory: the peak resident memory a process adds reading the log and building its findings
  (a batch at a time, as the import stores them), streamed vs parsed whole, each in a fresh
  child process against a child that only loads the same modules. Goal: <= 0.15.
- transactions: the longest transaction of the worker's import vs the one transaction
  ``report_attach`` holds for the whole log. Goal: <= 0.1 (a batch of 2,000 findings).
- time: the worker's whole import vs ``report_attach``. Goal: <= 1.5 (streaming in Python
  costs more than ``json.loads`` in C; the request is not held for it).

    .venv/bin/python bench/bench_report_import.py [--results 54000]
    DATABASE_URL=postgresql://... .venv/bin/python bench/bench_report_import.py
"""

import argparse
import contextlib
import io
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.update(
    {
        "DJANGO_SETTINGS_MODULE": "config.settings.base",
        "WARDEN_VAR_DIR": tempfile.mkdtemp(prefix="warden-bench-import-"),
        "WARDEN_MAX_REPORT_BYTES": str(200 * 1024 * 1024),
    }
)

import django  # noqa: E402

django.setup()

from django.core.files.base import File  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test.utils import setup_databases, teardown_databases  # noqa: E402

import reviews.reports as reports  # noqa: E402
from bench.bench_sarif_import import make_version  # noqa: E402
from bench.bench_sarif_parse import synthesise  # noqa: E402
from reviews.checks.engine import BATCH  # noqa: E402
from reviews.importers import parse_report, stream_report  # noqa: E402
from reviews.models import Finding  # noqa: E402

GOALS = {"memory": 0.15, "transaction": 0.1, "time": 1.5}


def child(mode: str, path: str) -> None:
    """Read the log as ``mode`` says, then print the process's peak resident memory (KiB)."""
    if mode.startswith("write-"):
        Path(path).write_bytes(synthesise(int(mode.removeprefix("write-"))))
    elif mode == "whole":
        report = parse_report("sarif", Path(path).read_bytes(), max_bytes=1 << 30)
        assert report.findings
    elif mode == "streamed":
        with open(path, "rb") as file:
            streamed = stream_report("sarif", file)
            batch: list = []
            for finding in streamed.findings:
                batch.append(finding)
                if len(batch) == BATCH:
                    batch = []
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def peak(mode: str, path: str) -> int:
    command = [sys.executable, __file__, "--child", mode, path]
    done = subprocess.run(command, check=True, capture_output=True, text=True)  # noqa: S603 - this script itself
    return int(done.stdout.split()[-1])


class Transactions:
    """``transaction.atomic`` that times each transaction it opens."""

    def __init__(self) -> None:
        self.times: list[float] = []

    @contextlib.contextmanager
    def atomic(self):
        start = time.perf_counter()
        with transaction.atomic():
            yield
        self.times.append(time.perf_counter() - start)


def timed_import(version, author, data: bytes) -> tuple[float, float, int]:
    """(whole import, longest transaction, findings) of the worker's import."""
    store_findings, timer = reports.store_findings, Transactions()

    def timed_store(**kwargs):
        return store_findings(**{**kwargs, "each_batch": timer.atomic})

    reports.store_findings = timed_store
    try:
        start = time.perf_counter()
        run = reports.report_queue(
            version=version, format="sarif", upload=File(io.BytesIO(data)), actor=author, filename="big.sarif"
        ).run  # its transaction holds one row and an audit event
        imported = reports.report_import(run_id=run.pk)
        elapsed = time.perf_counter() - start
    finally:
        reports.store_findings = store_findings
    assert imported.status in ("succeeded", "failed"), imported.error
    findings = imported.findings.count()
    imported.delete()
    return elapsed, max(timer.times), findings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=int, default=54_000)
    parser.add_argument("--child", nargs=2, metavar=("MODE", "PATH"), help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        child(*options.child)
        return 0
    # Children first: a child's peak counts the parent it was forked from, so the parent stays
    # small until they are done (a child writes the log).
    with tempfile.NamedTemporaryFile(suffix=".sarif") as log:
        peak(f"write-{options.results}", log.name)
        base, whole, streamed = (peak(mode, log.name) for mode in ("modules", "whole", "streamed"))
        data = Path(log.name).read_bytes()
    memory = (streamed - base) / (whole - base)

    if connection.vendor != "sqlite":  # keep clear of the test suite's database
        connection.settings_dict["TEST"]["NAME"] = "warden_bench_import"
    databases = setup_databases(verbosity=0, interactive=False)
    try:
        version, author = make_version()
        start = time.perf_counter()
        inline = reports.report_attach(version=version, format="sarif", content=data, actor=author).run
        inline_time = time.perf_counter() - start
        assert Finding.objects.filter(check_run=inline).count() == options.results
        inline.delete()  # the same log again would be "unchanged"
        queued_time, longest, findings = timed_import(version, author, data)
        assert findings == options.results
    finally:
        teardown_databases(databases, verbosity=0)
    figures = {"memory": memory, "transaction": longest / inline_time, "time": queued_time / inline_time}

    print(f"database: {connection.vendor}; log: {options.results:,} results, {len(data) / 1e6:.1f} MB")
    print(f"peak memory added, parsed whole:       {(whole - base) / 1024:7.1f} MiB")
    print(f"peak memory added, streamed:           {(streamed - base) / 1024:7.1f} MiB")
    print(f"  ratio streamed / whole:              {memory:7.3f}  (goal <= {GOALS['memory']})")
    print(f"report_attach, one transaction:        {inline_time:7.2f} s")
    print(f"worker import, longest transaction:    {longest:7.2f} s")
    print(f"  ratio longest / report_attach:       {figures['transaction']:7.3f}  (goal <= {GOALS['transaction']})")
    print(f"worker import, queue to imported:      {queued_time:7.2f} s  ({findings / queued_time:,.0f} results/s)")
    print(f"  ratio worker / report_attach:        {figures['time']:7.3f}  (goal <= {GOALS['time']})")
    return 0 if all(figures[name] <= goal for name, goal in GOALS.items()) else 1


if __name__ == "__main__":
    sys.exit(main())
