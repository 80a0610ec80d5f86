from itertools import pairwise

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction

from governance.audit import audit_record
from governance.models import AuditEvent
from governance.request_context import bind_request_id, unbind_request_id

pytestmark = pytest.mark.django_db


@pytest.fixture
def chain(in_review):
    """A real chain: organisation, plugin, version and review events (well over ten rows)."""
    assert AuditEvent.objects.count() > 10
    return list(AuditEvent.objects.order_by("seq"))


def verify(*args) -> str:
    from io import StringIO

    out = StringIO()
    call_command("verify_audit_log", *args, stdout=out)
    return out.getvalue()


def raw(sql: str, *params) -> None:
    table = AuditEvent._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(sql.format(table=table), params)


def test_intact_chain_verifies(chain):
    assert f"Audit log intact: {len(chain)} events, head {chain[-1].hash}." in verify()
    assert all(event.prev_hash == before.hash for before, event in pairwise(chain))


def test_edited_row_is_named(chain):
    victim = chain[4]
    raw("UPDATE {table} SET reason = %s WHERE seq = %s", "nothing to see", victim.seq)
    with pytest.raises(CommandError, match=rf"broken at row #{victim.seq}: its content does not match its hash"):
        verify()


def test_row_rewritten_with_a_fresh_hash_breaks_the_next_link(chain):
    victim = chain[4]
    victim.reason = "forged"
    raw("UPDATE {table} SET reason = %s, hash = %s WHERE seq = %s", "forged", victim.compute_hash(), victim.seq)
    with pytest.raises(CommandError, match=rf"broken at row #{victim.seq + 1}: its previous-row hash"):
        verify()


def test_deleted_row_is_named(chain):
    raw("DELETE FROM {table} WHERE seq = %s", chain[6].seq)
    with pytest.raises(CommandError, match=rf"broken at row #{chain[6].seq}: row #{chain[6].seq} is missing"):
        verify()


def test_deleted_tail_is_detected(chain):
    raw("DELETE FROM {table} WHERE seq >= %s", chain[-2].seq)
    with pytest.raises(CommandError, match=rf"rows after #{chain[-3].seq} up to #{chain[-1].seq} are missing"):
        verify()


def test_expect_head_detects_a_rewritten_chain(chain):
    assert "intact" in verify("--expect-head", chain[-1].hash)
    with pytest.raises(CommandError, match="the chain was rewritten"):
        verify("--expect-head", "f" * 64)


def test_orm_cannot_alter_or_delete_events(chain):
    event = chain[0]
    event.reason = "changed"
    with pytest.raises(ValueError, match="append-only"):
        event.save()
    with pytest.raises(ValueError, match="append-only"):
        event.delete()


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_audit_record_refuses_to_run_outside_a_transaction(in_review):
    with pytest.raises(RuntimeError, match="inside the transaction"):
        audit_record(actor=None, action="x", target=in_review)


def test_events_carry_the_request_id(in_review):
    token = bind_request_id("req-123")
    try:
        with transaction.atomic():
            event = audit_record(actor=None, action="test.ping", target=in_review)
    finally:
        unbind_request_id(token)
    assert event.request_id == "req-123"


def test_floats_in_event_data_verify_on_every_database(in_review):
    with transaction.atomic():
        audit_record(actor=None, action="test.measure", target=in_review, data={"p95": 1e16, "ratio": 0.1})
    event = AuditEvent.objects.get(action="test.measure")
    assert event.data == {"p95": "1e+16", "ratio": "0.1"}
    assert "intact" in verify()
