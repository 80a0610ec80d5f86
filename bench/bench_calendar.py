"""Benchmark: SLA due times over long windows cost about what short ones cost.

    .venv/bin/python bench/bench_calendar.py [--windows N]

``add_working_hours`` walks whole working days and weeks, not hours, so a 500-working-hour window
(about three months of a Mon-Fri 09:00-17:00 Berlin calendar with holidays) should cost a small
multiple of a 1-hour one. Baseline, same run: the same starts with a 1-hour window. Prints both
medians per call and their ratio; exits 1 when the long windows cost more than 20 times the short.
"""

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.update(
    {"DJANGO_SETTINGS_MODULE": "config.settings.base", "WARDEN_VAR_DIR": tempfile.mkdtemp(prefix="warden-bench-")}
)

import django  # noqa: E402

django.setup()

from governance.calendar import WorkingCalendar, add_working_hours  # noqa: E402

LIMIT = 20.0
HOLIDAYS = frozenset({date(2025, 12, 24), date(2025, 12, 25), date(2025, 12, 26), date(2025, 12, 31), date(2026, 1, 1)})
OFFICE = WorkingCalendar("Europe/Berlin", frozenset({1, 2, 3, 4, 5}), clock_time(9), clock_time(17), HOLIDAYS)


def per_call_us(starts: list[datetime], hours: float) -> float:
    began = time.perf_counter()
    for start in starts:
        add_working_hours(start, hours, OFFICE)
    return (time.perf_counter() - began) / len(starts) * 1e6


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--windows", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    rng = random.Random(7)
    origin = datetime(2024, 1, 1, tzinfo=UTC)
    starts = [origin + timedelta(seconds=rng.randrange(3 * 366 * 86_400)) for _ in range(args.windows)]
    short, long = [], []
    for _ in range(args.repeat):  # interleaved, so both see the same machine
        short.append(per_call_us(starts, 1))
        long.append(per_call_us(starts, 500))
    ratio = statistics.median(long) / statistics.median(short)
    print(
        f"{args.windows} windows x {args.repeat}: 1 h {statistics.median(short):.1f} us/call, "
        f"500 h {statistics.median(long):.1f} us/call, ratio {ratio:.2f} (goal < {LIMIT:.0f})"
    )
    return 0 if ratio < LIMIT else 1


if __name__ == "__main__":
    sys.exit(main())
