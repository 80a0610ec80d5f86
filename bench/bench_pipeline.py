"""The whole automated pipeline for a ~5,000-line plugin against the scanners alone.

Baseline: bandit and GuardDog run directly (as an operator would by hand) on the unpacked
plugin, one after the other. Pipeline: what Warden does for a submission, in one worker
process: upload (digest, limit-checked walk, manifest schema), submit, open the round, run
the six eligibility checks (the stage then passes on its own) and the three security
checks (bandit, GuardDog, OSV match), storing every finding. Both are measured in the same
run, interleaved, median of N; the goal is pipeline <= 1.3 x (bandit + GuardDog).

    .venv/bin/python bench/bench_pipeline.py [--repeat 5]
"""

import argparse
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SCRATCH = Path(tempfile.mkdtemp(prefix="warden-bench-pipeline-"))
os.environ.update({"DJANGO_SETTINGS_MODULE": "config.settings.base", "WARDEN_VAR_DIR": str(SCRATCH)})
os.environ.pop("DATABASE_URL", None)

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.contrib.auth.models import Group  # noqa: E402
from django.core.files.uploadedfile import SimpleUploadedFile  # noqa: E402
from django.core.management import call_command  # noqa: E402

from bench.make_plugin import count_lines, make_plugin  # noqa: E402
from governance import roles  # noqa: E402
from governance.models import AllowedLicence, HostPlatform  # noqa: E402
from governance.services import pipeline_install_defaults  # noqa: E402
from reviews.checks.engine import check_run_execute  # noqa: E402
from reviews.checks.guarddog_scan import offline_environment  # noqa: E402
from reviews.models import CheckRun, RunStatus  # noqa: E402
from reviews.services import review_start  # noqa: E402
from submissions import services as sub  # noqa: E402

GOAL = 1.3


def setup() -> tuple:
    call_command("migrate", verbosity=0)
    User = get_user_model()
    admin = User.objects.create_user("bench-admin", is_staff=True)
    admin.groups.add(Group.objects.get(name=roles.PLATFORM_ADMINS))
    author = User.objects.create_user("bench-author", is_staff=True)
    pipeline_install_defaults(actor=admin)
    HostPlatform.objects.create(name="Bench host", api_version="2.4", is_default=True)
    AllowedLicence.objects.create(spdx_id="MIT")
    organisation = sub.organisation_create(name="Acme", slug="acme", actor=admin)
    sub.organisation_add_member(organisation=organisation, user=author, actor=admin)
    plugin = sub.plugin_create(organisation=organisation, name="acme-ledger", category="data-connector", actor=author)
    return plugin, author


def archive(tree: Path, number: int) -> SimpleUploadedFile:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zipped:
        for path in sorted(tree.rglob("*")):
            if path.is_file():
                data = path.read_bytes()
                if path.name == "plugin.toml":
                    data = data.replace(b'version = "2.3.1"', f'version = "2.3.{number}"'.encode())
                zipped.writestr(path.relative_to(tree).as_posix(), data)
    return SimpleUploadedFile(f"acme-ledger-2.3.{number}.zip", buffer.getvalue())


def pipeline_once(plugin, author, upload) -> dict:
    version = sub.version_create(plugin=plugin, artifact=upload, actor=author)
    sub.version_submit(version=version, actor=author)
    review_start(version=version)
    while queued := list(
        CheckRun.objects.filter(version=version, status=RunStatus.QUEUED).values_list("pk", flat=True)
    ):
        for run_id in queued:
            check_run_execute(run_id=run_id)
    runs = CheckRun.objects.filter(version=version)
    return {run.check_key: run.status for run in runs}


def tools_once(tree: Path, offline: dict) -> None:
    for argv, env in (
        ([sys.executable, "-m", "bandit", "-r", str(tree), "-f", "json", "-q"], None),
        ([sys.executable, "-m", "guarddog", "pypi", "scan", str(tree), "--output-format", "json"], offline),
    ):
        subprocess.run(argv, env=env, capture_output=True, check=False)  # noqa: S603


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    options = parser.parse_args()
    plugin, author = setup()
    tree = make_plugin(SCRATCH / "plugin")
    lines, modules = count_lines(tree)
    cache = SCRATCH / "guarddog-lists"
    cache.mkdir()
    offline = offline_environment(cache)
    tools, pipeline = [], []
    statuses: dict = {}
    for number in range(options.repeat + 1):  # the first round warms caches and is not counted
        start = time.perf_counter()
        tools_once(tree, offline)
        middle = time.perf_counter()
        statuses = pipeline_once(plugin, author, archive(tree, number))
        end = time.perf_counter()
        if number:
            tools.append(middle - start)
            pipeline.append(end - middle)
    ratio = statistics.median(pipeline) / statistics.median(tools)
    print(f"plugin: {lines} lines in {modules} modules; {options.repeat} rounds after a warm-up")
    print(f"checks: {', '.join(f'{key}={status}' for key, status in sorted(statuses.items()))}")
    print(f"bandit + guarddog, direct:  median {statistics.median(tools):.3f} s  (min {min(tools):.3f})")
    print(f"warden automated pipeline:  median {statistics.median(pipeline):.3f} s  (min {min(pipeline):.3f})")
    print(f"ratio pipeline / tools:     {ratio:.2f}  (goal <= {GOAL})")
    return 0 if ratio <= GOAL else 1


if __name__ == "__main__":
    sys.exit(main())
