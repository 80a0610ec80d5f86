"""The move of rubrics, ratings, policies, decisions and exemptions from governance to decisions
(docs/architecture.md): what was recorded or linked under the old app label still leads to them."""

import pytest
from django.contrib.auth.models import Permission
from django.db import transaction
from django.utils import timezone

from decisions.models import RiskRubric
from decisions.rubric_versions import rubric_current
from governance import hooks
from governance.audit import audit_lock, audit_record
from governance.models import AuditEvent
from governance.selectors import audit_events_for

pytestmark = pytest.mark.django_db


def test_an_old_admin_address_of_a_moved_model_redirects_to_its_new_one(admin_client):
    rubric = rubric_current()

    response = admin_client.get(f"/admin/governance/riskrubric/{rubric.pk}/change/?from=mail")

    assert response.status_code == 301
    assert response["Location"] == f"/admin/decisions/riskrubric/{rubric.pk}/change/?from=mail"
    assert admin_client.get(response["Location"]).status_code == 200


def test_events_recorded_before_the_move_are_part_of_the_objects_trail():
    rubric = rubric_current()
    with transaction.atomic():  # as an event written by the code before the move was labelled
        head = audit_lock()
        old = AuditEvent(
            seq=head.seq + 1,
            created_at=timezone.now(),
            actor_username="system",
            action="rubric.install",
            object_type="governance.riskrubric",
            object_id=str(rubric.pk),
            object_repr=str(rubric),
            prev_hash=head.hash,
        )
        old.hash = old.compute_hash()
        old.save()
        head.seq, head.hash = old.seq, old.hash
        head.save(update_fields=["seq", "hash"])
        new = audit_record(actor=None, action="rubric.note", target=rubric)

    assert new.object_type == "decisions.riskrubric"
    installed = AuditEvent.objects.get(action="rubric.install_default")  # written under the new label
    assert list(audit_events_for(targets=[rubric])) == [new, old, installed]


def test_the_permissions_on_moved_models_are_named_by_their_new_app():
    codenames = set(Permission.objects.filter(content_type__app_label="decisions").values_list("codename", flat=True))

    assert {"change_riskrubric", "view_riskrating", "add_exemption", "view_policyevaluation"} <= codenames
    assert not Permission.objects.filter(content_type__app_label="governance", codename="change_riskrubric").exists()
    assert RiskRubric._meta.db_table == "governance_riskrubric"  # the table it always had


def test_a_hook_by_an_unknown_name_is_refused():
    with pytest.raises(ValueError, match="Unknown hook"):
        hooks.connect("version_approved_typo", lambda **kwargs: None)
