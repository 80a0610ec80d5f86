"""Large SARIF logs: stored in the request, imported by a worker streaming, in short transactions.

``WARDEN_REPORT_INLINE_BYTES = 0`` sends every SARIF log this way, so the real bandit log of
the fixtures stands for a 35 MB one (bench/bench_report_import.py measures the big ones).
"""

import json
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from rest_framework.test import APIClient

from decisions.gate import gate_verdict
from governance.models import AuditEvent
from reviews.checks import engine
from reviews.checks.engine import check_runs_requeue_stale
from reviews.models import CheckRun, Finding
from reviews.reports import report_import

pytestmark = pytest.mark.django_db

BANDIT = (Path(__file__).resolve().parents[1] / "fixtures" / "reports" / "bandit.sarif").read_bytes()


@pytest.fixture(autouse=True)
def streamed(settings):
    settings.WARDEN_REPORT_INLINE_BYTES = 0


@pytest.fixture
def api(author):
    client = APIClient()
    client.force_authenticate(author)
    return client


def post(api, version, content: bytes, wait: bool = False):
    return api.post(
        f"/api/v1/versions/{version.pk}/reports/{'?wait=true' if wait else ''}",
        {"format": "sarif", "report": SimpleUploadedFile("bandit.sarif", content)},
        format="multipart",
    )


def findings_of(run_id: int) -> list[tuple]:
    return sorted(
        Finding.objects.filter(check_run_id=run_id).values_list("rule_id", "severity", "path", "line", "fingerprint")
    )


def with_results(*results: dict) -> bytes:
    log = json.loads(BANDIT)
    log["runs"][0]["results"] = list(results)
    return json.dumps(log).encode()


def test_a_large_log_is_queued_then_imported_as_the_request_would(
    api, in_review, settings, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = post(api, in_review, BANDIT)
    assert response.status_code == 202, response.json()
    body = response.json()
    assert (body["status"], body["tool"], response["Location"]) == ("queued", "", body["url"])
    polled = api.get(body["url"]).json()
    assert (polled["status"], polled["tool"], polled["error"]) == ("failed", "Bandit", "")
    assert polled["summary"]["findings"] == {"high": 2, "medium": 2, "low": 3}
    assert AuditEvent.objects.filter(action="report.queue").count() == 1
    assert AuditEvent.objects.filter(action="report.attach", data__run=body["id"]).count() == 1

    settings.WARDEN_REPORT_INLINE_BYTES = 10**9  # the same log, parsed in its request
    inline = post(api, in_review, BANDIT.replace(b'"Bandit"', b'"Bandit-inline"', 1))
    assert inline.status_code == 201
    assert {k: v for k, v in inline.json()["summary"].items() if k != "tools"} == {
        k: v for k, v in polled["summary"].items() if k != "tools"
    }
    strip = [(rule, severity, path, line) for rule, severity, path, line, _ in findings_of(body["id"])]
    assert strip == [(r, s, p, n) for r, s, p, n, _ in findings_of(inline.json()["id"])]


def test_until_imported_the_previous_report_counts_and_the_gate_waits(
    api, in_review, settings, django_capture_on_commit_callbacks
):
    settings.WARDEN_REPORT_INLINE_BYTES = 10**9
    first = post(api, in_review, with_results())  # the poster's earlier, clean log
    assert first.status_code == 201
    settings.WARDEN_REPORT_INLINE_BYTES = 0
    with django_capture_on_commit_callbacks(execute=False) as queued:
        response = post(api, in_review, BANDIT)
    assert response.status_code == 202 and len(queued) == 1
    gate = gate_verdict(version=in_review)
    assert gate["verdict"] == "pending"
    assert {"check": "external.sarif", "status": "queued"} in gate["waiting_for"]
    assert not Finding.objects.filter(check_run__origin="external").exists()  # the clean log still speaks

    queued[0]()  # the worker
    gate = gate_verdict(version=in_review)
    assert gate["verdict"] != "pending"
    assert {f["rule_id"] for f in gate["findings"]} >= {"B602"}


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_wait_true_answers_with_the_imported_run_and_its_verdict(api, in_review):
    response = post(api, in_review, BANDIT, wait=True)  # the import is queued on commit (and, in tests, run)
    body = response.json()
    assert (response.status_code, body["status"], body["gate"]["verdict"]) == (201, "failed", "fail")


def test_a_result_the_worker_refuses_leaves_no_rows_and_counts_for_nothing(
    api, in_review, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(engine, "BATCH", 2)  # the bad result comes after two committed batches
    good = json.loads(BANDIT)["runs"][0]["results"][0]
    log = with_results(*[good] * 5, {**good, "level": "severe"})
    with django_capture_on_commit_callbacks(execute=True):
        response = post(api, in_review, log)
    run = CheckRun.objects.get(pk=response.json()["id"])
    assert run.status == "errored"
    assert run.error == "The report was not imported: runs[0].results[5].level: 'severe' is not a SARIF level"
    assert not Finding.objects.filter(check_run=run).exists()
    assert api.get(response.json()["url"]).json()["error"] == run.error
    assert gate_verdict(version=in_review)["waiting_for"] == []  # nothing to wait for, nothing counted


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{not json", "not JSON: "),
        (b'{"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "x"}}, "results": []}], "runs": []}',
         "the report names runs twice"),
        (b'{"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "x"}}, "results": [], "results": []}]}',
         "runs[] names results twice"),
        (b'{"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "\\udc80"}}, "results": []}]}',
         "lone UTF-16 surrogate"),
        (json.dumps({"bomFormat": "CycloneDX", "specVersion": "1.5", "components": []}).encode(),
         "this is a CycloneDX document, not SARIF"),
    ],
)  # fmt: skip
def test_an_unreadable_log_is_an_errored_run_saying_why(
    api, in_review, content, message, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = post(api, in_review, content)
    run = CheckRun.objects.get(pk=response.json()["id"])
    assert run.status == "errored" and message in run.error, run.error
    assert not Finding.objects.filter(check_run=run).exists()


def test_a_killed_import_runs_again_to_exactly_its_findings(
    api, in_review, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(engine, "BATCH", 2)
    insert = engine._insert
    calls = []

    def dies_after_one_batch(*args):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # the worker is killed: not an error the import handles
        insert(*args)

    monkeypatch.setattr(engine, "_insert", dies_after_one_batch)
    with django_capture_on_commit_callbacks(execute=False) as queued:
        run_id = post(api, in_review, BANDIT).json()["id"]
    with pytest.raises(KeyboardInterrupt):
        queued[0]()
    run = CheckRun.objects.get(pk=run_id)
    assert run.status == "running" and Finding.objects.filter(check_run=run).count() == 2

    monkeypatch.setattr(engine, "_insert", insert)
    report_import(run_id=run_id)  # the sweeper's retry
    run.refresh_from_db()
    assert (run.status, run.attempts, Finding.objects.filter(check_run=run).count()) == ("failed", 2, 7)


def test_the_sweeper_hands_a_lost_import_to_the_importer(api, in_review, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        run_id = post(api, in_review, BANDIT).json()["id"]  # its task was lost
    CheckRun.objects.filter(pk=run_id).update(created_at=timezone.now() - timedelta(days=1))
    assert check_runs_requeue_stale() == 1  # sync in tests: imported now
    assert CheckRun.objects.get(pk=run_id).status == "failed"


def test_the_same_log_again_is_unchanged_and_stores_nothing(api, in_review, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        first = post(api, in_review, BANDIT).json()
    again = post(api, in_review, BANDIT)
    assert (again.status_code, again.json()["id"], again.json()["unchanged"]) == (200, first["id"], True)
    assert CheckRun.objects.filter(origin="external").count() == 1


def test_a_version_closed_before_the_import_takes_none_of_it(
    api, in_review, author, django_capture_on_commit_callbacks
):
    from submissions.services import version_withdraw

    with django_capture_on_commit_callbacks(execute=False) as queued:
        run_id = post(api, in_review, BANDIT).json()["id"]
    version_withdraw(version=in_review, actor=author, reason="Replaced.")
    queued[0]()
    run = CheckRun.objects.get(pk=run_id)
    assert run.status == "errored" and "takes no reports" in run.error
    assert not Finding.objects.filter(check_run=run).exists()


def test_another_organisations_report_is_not_found(api, in_review, other_author, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        url = post(api, in_review, BANDIT).json()["url"]
    client = APIClient()
    client.force_authenticate(other_author)
    assert client.get(url).status_code == 404
    run_id = url.rstrip("/").rpartition("/")[2]
    assert api.get(url.replace(f"/reports/{run_id}/", "/reports/999999/")).status_code == 404
