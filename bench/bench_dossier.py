"""The dossier's render time at 200 findings and 50 changed files, against the plain version
change page measured in the same run; goal: the dossier's median within 3 times the change page's.

    .venv/bin/python bench/bench_dossier.py [--findings N] [--changed N] [--repeat R]

A scratch SQLite database with the default pipeline; a plugin whose 1.0.0 is approved and whose
1.1.0 (submitted, in review) changes ``--changed`` of its 500 modules and has ``--findings``
findings of its security check, spread over kinds, severities, paths and two sources. Both pages
are fetched through Django's test client as a platform admin (who sees every section), interleaved
so both see the same machine load; the median of ``--repeat`` renders each. Exits 1 when the
dossier takes 3 times the change page or more.
"""

import argparse
import gc
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.update(
    {"DJANGO_SETTINGS_MODULE": "config.settings.test", "WARDEN_VAR_DIR": tempfile.mkdtemp(prefix="warden-bench-")}
)

import django  # noqa: E402

django.setup()

from django.contrib.auth.models import Group, User  # noqa: E402
from django.core.files.uploadedfile import SimpleUploadedFile  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.test import Client  # noqa: E402
from django.urls import reverse  # noqa: E402
from django.utils import timezone  # noqa: E402
from update_archives import archive  # noqa: E402

from governance import roles  # noqa: E402
from governance.models import Stage  # noqa: E402
from governance.services import pipeline_install_defaults  # noqa: E402
from reviews.models import CheckRun, Finding, RunOrigin, StageReview  # noqa: E402
from submissions import services as sub  # noqa: E402
from submissions.models import PluginVersion  # noqa: E402

GOAL = 3.0
KINDS = ("security", "capability", "behaviour", "dependency", "quality")
SEVERITIES = ("critical", "high", "medium", "low", "info")


def setup(findings: int, changed: int) -> PluginVersion:
    call_command("migrate", verbosity=0)
    admin = User.objects.create_user("platform", is_staff=True)
    admin.groups.add(Group.objects.get(name=roles.PLATFORM_ADMINS))
    pipeline_install_defaults(actor=admin)
    organisation = sub.organisation_create(name="Bench", slug="bench", actor=admin)
    author = User.objects.create_user("author", is_staff=True)
    sub.organisation_add_member(organisation=organisation, user=author, actor=admin)
    plugin = sub.plugin_create(organisation=organisation, name="bench", category="data-connector", actor=author)

    def upload(number: str, edited: bool) -> PluginVersion:
        data = archive(number, changed, 500 - changed, 200, edited=edited)
        return sub.version_create(plugin=plugin, artifact=SimpleUploadedFile(f"bench-{number}.zip", data), actor=author)

    base = upload("1.0.0", edited=False)
    # A fixture, not a workflow: the approval itself is benchmarked elsewhere (bench_pipeline.py).
    PluginVersion.objects.filter(pk=base.pk).update(status="approved", decided_at=timezone.now())
    head = upload("1.1.0", edited=True)
    PluginVersion.objects.filter(pk=head.pk).update(status="in_review", review_round=1)
    head.refresh_from_db()
    security = pipeline_stage(head, "security")
    runs = [
        CheckRun.objects.create(
            version=head, stage_review=security, check_key="security.bandit", status="failed", revision=head.revision
        ),
        CheckRun.objects.create(
            version=head,
            check_key="security.bandit",
            tool="bandit",
            origin=RunOrigin.EXTERNAL,
            status="failed",
            revision=head.revision,
        ),
    ]
    Finding.objects.bulk_create(
        Finding(
            check_run=run,
            version=head,
            kind=KINDS[i % len(KINDS)],
            severity=SEVERITIES[i % len(SEVERITIES)],
            rule_id=f"B{600 + i % 40}",
            title=f"Finding {i} of the benchmark",
            message="subprocess call with shell=True identified, security issue.",
            path=f"bench/changed/module_{i % changed}.py",
            line=i % 200 + 1,
            snippet=f"    result_{i} = transform(payload, compute({i}))",
            fingerprint=f"{i:064x}",
            location_key=f"bench/changed/module_{i % changed}.py:{i % 200 + 1}:B{600 + i % 40}",
            data={"package": f"pkg{i % 7}", "version": "1.0", "advisory": f"GHSA-{i}", "fixed": ["1.1"]},
        )
        for i in range(findings)
        for run in (runs if i % 4 == 0 else runs[:1])  # a quarter also reported by a posted report
    )
    return head


def pipeline_stage(version: PluginVersion, key: str) -> StageReview:
    stage = Stage.objects.get(key=key)
    return StageReview.objects.create(version=version, stage=stage, round=1, blocking=True, status="in_progress")


def main() -> int:
    options = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    options.add_argument("--findings", type=int, default=200)
    options.add_argument("--changed", type=int, default=50)
    options.add_argument("--repeat", type=int, default=15)
    args = options.parse_args()
    version = setup(args.findings, args.changed)
    client = Client(HTTP_HOST="localhost")
    client.force_login(User.objects.get(username="platform"))
    pages = {
        "change page": reverse("admin:submissions_pluginversion_change", args=[version.pk]),
        "dossier": reverse("admin:submissions_pluginversion_dossier", args=[version.pk]),
    }
    times: dict[str, list[float]] = {name: [] for name in pages}
    sizes = {}
    for name, url in pages.items():  # warm caches (templates, content types, permissions)
        response = client.get(url)
        assert response.status_code == 200, (name, response.status_code)
        sizes[name] = len(response.content)
    dossier = client.get(pages["dossier"]).content.decode()
    places = dossier.count('id="finding-')
    assert places == args.findings and "What changed since" in dossier, places
    for _ in range(args.repeat):
        for name, url in pages.items():
            gc.collect()
            started = time.perf_counter()
            client.get(url)
            times[name].append(time.perf_counter() - started)
    medians = {name: statistics.median(values) for name, values in times.items()}
    ratio = medians["dossier"] / medians["change page"]
    print(
        f"{args.findings} places found ({args.findings + args.findings // 4} findings, a quarter from two sources), "
        f"{args.changed} changed files "
        f"of 500; median of {args.repeat}"
    )
    for name in pages:
        print(f"  {name:12} {medians[name] * 1e3:8.1f} ms  {sizes[name] / 1e3:7.0f} kB")
    print(f"  dossier / change page: {ratio:.2f} (goal < {GOAL:g})")
    return 0 if ratio < GOAL else 1


if __name__ == "__main__":
    sys.exit(main())
