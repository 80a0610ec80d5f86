"""Importing a 50,000-result SARIF report into the database, against the bare floor.

Floor: ``json.loads`` of the report, then bulk-inserting one Finding row per result with
the same fields (no validation, no fingerprints, no report file), in one transaction.
Warden: ``report_attach`` as the API calls it: parse and validate every result, map
severities and CWEs, fingerprint, mark carried-over findings, store the raw report, insert
the findings and the run, write the audit event. Same database, same run, best of N; the
goal is floor / warden >= 0.5.

    .venv/bin/python bench/bench_sarif_import.py [--results 50000] [--repeat 3]
    DATABASE_URL=postgresql://... .venv/bin/python bench/bench_sarif_import.py   # on PostgreSQL
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.update(
    {
        "DJANGO_SETTINGS_MODULE": "config.settings.base",
        "WARDEN_VAR_DIR": tempfile.mkdtemp(prefix="warden-bench-sarif-"),
        "WARDEN_MAX_REPORT_BYTES": str(200 * 1024 * 1024),
    }
)

import django  # noqa: E402

django.setup()

from django.db import connection, transaction  # noqa: E402
from django.test.utils import setup_databases, teardown_databases  # noqa: E402

from bench.bench_sarif_parse import floor, synthesise  # noqa: E402
from reviews.models import CheckRun, Finding  # noqa: E402
from reviews.reports import report_attach  # noqa: E402

GOAL = 0.5


def make_version():
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from governance import roles
    from submissions import services as sub
    from submissions.samples import plugin_archive

    User = get_user_model()
    admin = User.objects.create_user("bench-admin", is_staff=True)
    admin.groups.add(Group.objects.get(name=roles.PLATFORM_ADMINS))
    author = User.objects.create_user("bench-author", is_staff=True)
    organisation = sub.organisation_create(name="Acme", slug="acme", actor=admin)
    sub.organisation_add_member(organisation=organisation, user=author, actor=admin)
    plugin = sub.plugin_create(organisation=organisation, name="acme-ledger", category="data-connector", actor=author)
    version = sub.version_create(plugin=plugin, artifact=plugin_archive(plugin.name, "1.0.0"), actor=author)
    return version, author


def floor_import(data: bytes, run: CheckRun) -> None:
    with transaction.atomic():
        Finding.objects.bulk_create(
            (
                Finding(
                    check_run=run,
                    version_id=run.version_id,
                    kind="security",
                    severity="medium",
                    rule_id=rule,
                    title=rule,
                    message=message,
                    path=path,
                    line=line,
                    tool="bandit",
                    fingerprint="",
                    snippet=snippet,
                )
                for rule, _level, message, path, line, snippet, _sev, _conf in floor(data)
            ),
            batch_size=2000,
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    options = parser.parse_args()
    if connection.vendor != "sqlite":  # keep clear of the test suite's database
        connection.settings_dict["TEST"]["NAME"] = "warden_bench_sarif"
    databases = setup_databases(verbosity=0, interactive=False)  # a throwaway database
    try:
        version, author = make_version()
        data = synthesise(options.results)
        scratch_run = CheckRun.objects.create(version=version, check_key="bench.floor")
        floors, ours = [], []
        for _ in range(options.repeat):
            start = time.perf_counter()
            floor_import(data, scratch_run)
            floors.append(time.perf_counter() - start)
            Finding.objects.filter(check_run=scratch_run).delete()
            start = time.perf_counter()
            run = report_attach(version=version, format="sarif", content=data, actor=author).run
            ours.append(time.perf_counter() - start)
            assert run.findings.count() == options.results
            run.delete()  # the same report again would be "unchanged": each repeat imports afresh
        ratio = min(floors) / min(ours)
        print(
            f"database: {connection.vendor}; report: {options.results} results, {len(data) / 1e6:.1f} MB; "
            f"best of {options.repeat}"
        )
        print(f"floor (json.loads + bulk insert):   {min(floors):6.2f} s")
        print(f"warden report_attach:               {min(ours):6.2f} s  ({options.results / min(ours):,.0f} results/s)")
        print(f"ratio floor / warden:               {ratio:6.2f}  (goal >= {GOAL})")
        return 0 if ratio >= GOAL else 1
    finally:
        teardown_databases(databases, verbosity=0)


if __name__ == "__main__":
    sys.exit(main())
