"""Pages about an object another vendor may not see answer exactly as for a missing one: no
status code, redirect or message tells which ids exist."""

import pytest
from django.contrib import admin
from django.urls import reverse

from governance.admin_base import ScopedAdmin

pytestmark = pytest.mark.django_db


@pytest.fixture
def theirs(draft):
    """Objects of acme, with the history simple-history keeps of them."""
    return {"pluginversion": draft, "plugin": draft.plugin, "organisation": draft.plugin.organisation}


@pytest.mark.parametrize("model", ["pluginversion", "plugin", "organisation"])
def test_the_history_pages_of_another_vendors_object_are_404_as_for_a_missing_one(client, theirs, other_author, model):
    obj = theirs[model]
    client.force_login(other_author)
    history = f"admin:submissions_{model}_history"
    existing, missing = client.get(reverse(history, args=[obj.pk])), client.get(reverse(history, args=[999999]))
    assert (existing.status_code, missing.status_code) == (404, 404)
    record = obj.history.latest("history_date")
    form = f"admin:submissions_{model}_simple_history"
    assert client.get(reverse(form, args=[obj.pk, record.pk])).status_code == 404


def test_the_author_still_reads_their_own_history(client, theirs, author):
    client.force_login(author)
    for model, obj in theirs.items():
        assert client.get(reverse(f"admin:submissions_{model}_history", args=[obj.pk])).status_code == 200, model


def test_every_scoped_admin_answers_history_through_its_selector():
    scoped = [model_admin for model_admin in admin.site._registry.values() if isinstance(model_admin, ScopedAdmin)]
    assert len(scoped) > 10
    assert all(type(model_admin).history_view is ScopedAdmin.history_view for model_admin in scoped)


def test_annotating_a_version_one_may_not_see_names_nothing(draft, other_author, security, in_review):
    from governance.errors import NotFound
    from reviews.collaboration import annotation_add

    with pytest.raises(NotFound) as refused:
        annotation_add(version=draft, actor=other_author, body="What is this?")
    assert refused.value.detail == "No such version." and draft.plugin.name not in str(refused.value.as_dict())
    thread = annotation_add(version=in_review, actor=security, body="Why eval?")
    with pytest.raises(NotFound):  # a reply to another vendor's thread: not even "resolved" or "nested"
        annotation_add(version=in_review, actor=other_author, body="me too", parent=thread)
