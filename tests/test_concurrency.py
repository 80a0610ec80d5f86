"""Row locks make concurrent decisions safe: one wins, the rest get a clear conflict."""

import threading

import pytest
from django.db import connection, connections

from governance.audit import audit_verify
from governance.errors import TransitionRefused
from governance.models import AuditEvent
from reviews import services as review
from reviews.models import ReviewStatus

from .conftest import open_review

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="needs DATABASE_URL pointing at PostgreSQL"),
]

THREADS = 20


def test_twenty_concurrent_passes_of_one_stage_review(in_review, platform_admin):
    eligibility = open_review(in_review, "eligibility")
    barrier = threading.Barrier(THREADS)
    outcomes: list[object] = []
    lock = threading.Lock()

    def attempt():
        try:
            barrier.wait()
            review.stage_pass(review=eligibility, actor=platform_admin, reason="checked")
            result: object = "passed"
        except Exception as exc:  # every outcome is collected and asserted below
            result = exc
        finally:
            connections.close_all()
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=attempt) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

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
