"""What ``security.dependencies`` pays per version: 500 pinned requirements matched against
5,000 advisories stored in the database (query, parse, index, match), next to the pure
in-memory match of bench_advisory_match.py, measured in the same run. Goal: under 0.5 s.

    .venv/bin/python bench/bench_advisory_store.py
"""

import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.update(
    {
        "DJANGO_SETTINGS_MODULE": "config.settings.base",
        "WARDEN_VAR_DIR": tempfile.mkdtemp(prefix="warden-bench-osv-"),
    }
)

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402
from django.test.utils import setup_databases, teardown_databases  # noqa: E402

from bench.bench_advisory_match import ADVISORIES, PACKAGES, advisory_data, package_names, requirements  # noqa: E402
from reviews.advisories.matching import AdvisoryIndex  # noqa: E402
from reviews.advisories.osv import parse_advisory  # noqa: E402
from reviews.advisories.store import advisories_import, match_requirements  # noqa: E402

LIMIT_SECONDS = 0.5
ROUNDS = 5


def best(work) -> tuple[float, object]:
    timings, result = [], None
    for _ in range(ROUNDS):
        start = time.perf_counter()
        result = work()
        timings.append(time.perf_counter() - start)
    return min(timings), result


def main() -> int:
    if connection.vendor != "sqlite":
        connection.settings_dict["TEST"]["NAME"] = "warden_bench_osv"
    databases = setup_databases(verbosity=0, interactive=False)
    try:
        rng = random.Random(20240501)
        names = package_names(rng, PACKAGES)
        raw = [advisory_data(rng, n, names) for n in range(ADVISORIES)]
        pins = requirements(rng, names)
        texts = [f"{p.name}=={p.version}" for p in pins]
        start = time.perf_counter()
        imported = advisories_import(advisories=(parse_advisory(data) for data in raw))
        import_seconds = time.perf_counter() - start
        index = AdvisoryIndex(parse_advisory(data) for data in raw)
        memory_seconds, _ = best(lambda: index.match(pins))
        store_seconds, result = best(lambda: match_requirements(requirements=texts))
        matches, _unpinned = result  # type: ignore[misc]
        print(f"database: {connection.vendor}; {imported.created} advisories imported in {import_seconds:.2f} s")
        print(f"requirements: {len(texts)}; matches: {len(matches)}")
        print(f"in-memory match (index built):            {memory_seconds * 1000:8.2f} ms")
        print(f"from the store (query, parse, index, match): {store_seconds * 1000:8.2f} ms  (goal < 500 ms)")
        return 0 if store_seconds < LIMIT_SECONDS else 1
    finally:
        teardown_databases(databases, verbosity=0)


if __name__ == "__main__":
    sys.exit(main())
