"""Row locks make concurrent decisions safe: one wins, the rest get a clear conflict."""

import threading

import pytest
from django.db import connection, connections, transaction

from decisions import deployment
from governance.audit import audit_record, audit_verify
from governance.errors import TransitionRefused
from governance.models import AuditEvent
from reviews import services as review
from reviews.models import ReviewStatus
from tests.conftest import open_review, run_concurrently

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="needs DATABASE_URL pointing at PostgreSQL"),
]

THREADS = 20


def test_twenty_concurrent_passes_of_one_stage_review(in_review, platform_admin):
    eligibility = open_review(in_review, "eligibility")

    def attempt():
        review.stage_pass(review=eligibility, actor=platform_admin, reason="checked")
        return "passed"

    outcomes = run_concurrently([attempt] * THREADS)

    assert len(outcomes) == THREADS
    assert outcomes.count("passed") == 1
    conflicts = [o for o in outcomes if o != "passed"]
    assert all(isinstance(o, TransitionRefused) for o in conflicts), conflicts
    assert all("it is passed" in o.detail for o in conflicts)
    eligibility.refresh_from_db()
    assert eligibility.status == ReviewStatus.PASSED
    assert AuditEvent.objects.filter(action="stage.pass", object_id=str(eligibility.pk)).count() == 1
    assert eligibility.history.filter(status=ReviewStatus.PASSED).count() == 1
    assert audit_verify().ok


def test_verification_while_events_are_written_raises_no_false_alarm(in_review):
    stop = threading.Event()
    written = []

    def writer():
        try:
            while not stop.is_set():
                with transaction.atomic():
                    written.append(audit_record(actor=None, action="test.tick", target=in_review).seq)
        finally:
            connections.close_all()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        results = []
        while len(written) < 100 and len(results) < 5000:
            results.append(audit_verify())
    finally:
        stop.set()
        thread.join(timeout=60)
    assert len(written) >= 100
    assert len(results) > 10
    assert all(result.ok for result in results), [r.problem for r in results if not r.ok]
    assert audit_verify().checked == AuditEvent.objects.count()


def test_deploy_and_revoke_of_the_same_plugin_do_not_deadlock(make_approved, platform_admin, board, environment):
    old, new = make_approved("1.0.0"), make_approved("1.1.0")
    deployment.version_deploy(version=old, environment=environment, actor=platform_admin)
    outcomes = run_concurrently(
        [
            lambda: deployment.version_deploy(version=new, environment=environment, actor=platform_admin),
            lambda: deployment.version_revoke(version=old, actor=board, reason="Advisory."),
        ]
    )
    # whichever runs second may find the other's state changed; neither may die of a deadlock
    errors = [o for o in outcomes if isinstance(o, Exception)]
    assert all(isinstance(error, TransitionRefused) for error in errors), errors
    new.refresh_from_db()
    assert new.status == "deployed"
    assert audit_verify().ok
