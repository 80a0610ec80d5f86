"""The capability matrix (reviews/capabilities.py): declared in plugin.toml, detected by GuardDog,
observed in the sandbox, side by side, with every mismatch and its reason."""

import pytest

from governance.models import AllowedLicence, HostPlatform
from reviews.capabilities import Sighting, capability_matrix
from reviews.models import CheckRun, Finding
from submissions import services as sub
from submissions.samples import plugin_archive
from tests.conftest import current_review
from tests.reviews.test_escalation import fake_sandbox, manifest
from tests.reviews.test_sandbox import TEST_LIMITS, WELL_BEHAVED, needs_bwrap, run_plugin

pytestmark = pytest.mark.django_db

SPAWNS = """\
import subprocess
import urllib.request


class Plugin:
    def __init__(self, host=None):
        self.listing = subprocess.run(["ls", "-l"], capture_output=True, check=False).stdout

    def fetch(self):
        return urllib.request.urlopen("https://api.acme.example/v1")
"""


@pytest.fixture
def scanned(plugin, author, pipeline, monkeypatch, django_capture_on_commit_callbacks):
    """A plugin whose code starts a process that plugin.toml does not declare, through GuardDog
    and the sandbox (whose run the test gives: tests/reviews/test_sandbox.py runs the real one)."""
    HostPlatform.objects.create(name="Test host", api_version="2.4", is_default=True)
    AllowedLicence.objects.create(spdx_id="MIT")
    pipeline["security"].checks = ["security.guarddog", "security.behaviour"]
    pipeline["security"].save()
    fake_sandbox(monkeypatch).events = [
        {"kind": "network", "operation": "lookup", "target": "api.acme.example:443"},
        {"kind": "subprocess", "target": "ls -l"},
    ]
    archive = plugin_archive(
        plugin.name,
        "1.0.0",
        manifest=manifest("1.0.0", network=["api.acme.example:443"]),
        files={"acme_exporter/plugin.py": SPAWNS.encode()},
    )
    version = sub.version_create(plugin=plugin, artifact=archive, actor=author)
    with django_capture_on_commit_callbacks(execute=True):
        sub.version_submit(version=version, actor=author)
    assert current_review(version, "security").check_runs.count() == 2
    return version


def test_a_process_started_undeclared_is_a_mismatch_in_both_columns(scanned):
    matrix = capability_matrix(version=scanned)

    rows = {row.capability: row for row in matrix.rows}
    assert (matrix.scan, matrix.sandbox) == ("failed", "failed")
    assert list(rows) == ["network", "process-spawn", "filesystem-read", "filesystem-write", "environment"]
    assert [row.capability for row in matrix.mismatches] == ["process-spawn"]

    spawn = rows["process-spawn"]
    scan_finding = Finding.objects.get(version=scanned, rule_id="undeclared-capability")
    sandbox_finding = Finding.objects.get(version=scanned, rule_id="behaviour.undeclared-subprocess")
    assert spawn.declared == ()
    assert spawn.detected == (
        Sighting("capability-process-spawn", False, "acme_exporter/plugin.py", 7, scan_finding.pk),
    )
    assert spawn.observed == (Sighting("ls -l", False, "acme_exporter/plugin.py", 5, sandbox_finding.pk),)
    assert spawn.reasons == (
        "Starting processes: detected by the static scan (capability-process-spawn) but not declared.",
        "Starting processes: observed in the sandbox (ls -l) but not declared.",
    )

    network = rows["network"]  # declared, detected and observed: no mismatch, no finding
    assert network.declared == ("api.acme.example:443",)
    assert {s.target for s in network.detected} == {"capability-network-download", "capability-network-outbound"}
    assert all(s.declared and s.finding_id is None for s in network.detected)
    assert network.observed == (Sighting("api.acme.example:443", True),)
    assert (network.mismatch, network.unused, network.reasons) == (False, False, ())

    writes = rows["filesystem-write"]  # declared (write:/tmp), seen by neither: informational
    assert (writes.declared, writes.mismatch, writes.unused) == (("write:/tmp",), False, True)
    assert writes.reasons == (
        "Writing files: declared (write:/tmp) but neither detected by the static scan nor observed in "
        "the sandbox: an unused permission?",
    )
    assert rows["environment"].as_dict() == {
        "capability": "environment",
        "title": "Environment variables",
        "permission": "environment",
        "declared": (),
        "detected": (),
        "observed": (),
        "mismatch": False,
        "unused": False,
        "reasons": (),
    }


def test_a_capability_no_permission_grants_is_a_mismatch_whenever_it_is_seen(draft):
    CheckRun.objects.create(
        version=draft,
        check_key="security.behaviour",
        status="failed",
        summary={"observed": {"dynamic-code": ["exec('import os')"]}},
    )

    matrix = capability_matrix(version=draft)

    (row,) = matrix.mismatches
    assert (row.capability, row.permission, row.observed) == (
        "dynamic-code",
        "",
        (Sighting("exec('import os')", False),),
    )
    assert matrix.scan == "not_run" and matrix.seen == {"dynamic-code"}
    assert not any(r.unused for r in matrix.rows)  # without the scan, nothing is called unused


def runs_with_findings(version, count: int) -> list[CheckRun]:
    """A GuardDog run and a behaviour run of ``version`` with ``count`` findings between them."""
    scan = CheckRun.objects.create(
        version=version,
        check_key="security.guarddog",
        tool="guarddog",
        status="failed",
        summary={"capabilities": ["network"], "rules_hit": ["capability-network-outbound"]},
    )
    sandbox = CheckRun.objects.create(version=version, check_key="security.behaviour", status="failed", summary={})
    for number in range(count):
        if number % 2:
            run, kind, data = sandbox, "behaviour", {"kind": "network", "target": f"host{number}.example:443"}
        else:
            run, kind, data = scan, "capability", {"capability": f"rule-{number}", "evidence": [{"rule": "r"}]}
        Finding.objects.create(
            check_run=run,
            version=version,
            kind=kind,
            severity="high",
            rule_id=f"rule-{number}",
            title=f"Finding {number}",
            fingerprint=f"{number}".ljust(64, "0"),
            data=data,
        )
    return [scan, sandbox]


@pytest.mark.parametrize("count", [2, 20])
def test_the_matrix_takes_the_same_queries_whatever_the_findings(draft, count, django_assert_num_queries):
    runs = runs_with_findings(draft, count)

    with django_assert_num_queries(2):  # the two runs, their findings
        matrix = capability_matrix(version=draft)
    with django_assert_num_queries(1):  # the runs given, with their summaries
        assert capability_matrix(version=draft, runs=runs) == matrix

    rows = {row.capability: row for row in matrix.rows}
    assert len(rows["network"].observed) == count // 2 and not any(s.declared for s in rows["network"].observed)
    assert len(matrix.mismatches) == 1 + count // 2  # network, and one undeclared capability per scan finding


def test_only_the_current_revisions_runs_count(draft):
    runs_with_findings(draft, 4)  # revision 1's
    draft.revision = 2  # a new archive: its runs have not finished yet

    matrix = capability_matrix(version=draft)

    assert (matrix.scan, matrix.sandbox, matrix.mismatches) == ("not_run", "not_run", ())


@needs_bwrap
def test_the_sandbox_reports_everything_it_observed_declared_or_not(tmp_path, settings):
    settings.WARDEN_SANDBOX_LIMITS = TEST_LIMITS
    body = WELL_BEHAVED + 'subprocess.run(["true"], check=False)\n'

    outcome = run_plugin(tmp_path, body, permissions={"network": ["*.acme.example:443"], "environment": ["ACME_TOKEN"]})

    assert [f.rule_id for f in outcome.findings] == ["behaviour.undeclared-subprocess"]
    assert outcome.summary["observed"] == {
        "environment": ["ACME_TOKEN"],
        "filesystem-write": ["/tmp/cache.json"],
        "network": ["api.acme.example:443"],
        "process-spawn": ["true"],
    }
