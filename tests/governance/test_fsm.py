"""State machines refresh safely from several threads (governance/fsm.py)."""

import threading
from unittest.mock import patch

import pytest
from django.apps import apps
from django.db import models
from django_fsm import FSMFieldMixin, FSMModelMixin

from governance.fsm import StateMachineMixin
from submissions.models import PluginVersion

# Threads use connections of their own: they see only what is committed (the migrations' groups too).
pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def test_every_model_with_a_protected_state_uses_the_thread_safe_mixin():
    protected = [
        model
        for model in apps.get_models()
        if not hasattr(model, "instance_type")  # simple-history's copies have no transitions
        and any(isinstance(f, FSMFieldMixin) and f.protected for f in model._meta.concrete_fields)
    ]
    assert PluginVersion in protected and len(protected) >= 8
    assert [m._meta.label for m in protected if not issubclass(m, StateMachineMixin)] == []


def test_two_threads_refreshing_at_once_do_not_trip_the_protection(draft):
    """Threads A and B both find the status protected; A switches the protection off, refreshes
    and switches it on again; then B, which switched it off too, writes the status: django-fsm-2
    alone fails B with "Direct status modification is not allowed"."""
    a_found, b_found, a_done = threading.Event(), threading.Event(), threading.Event()
    protected_fields = FSMModelMixin._get_protected_fsm_fields
    refresh = models.Model.refresh_from_db

    def found(self):
        fields = protected_fields(self)
        if threading.current_thread().name == "A":
            a_found.set()
            b_found.wait(timeout=3)  # under the lock B cannot get here: A goes on after 3 s
        else:
            b_found.set()
        return fields

    def refreshed(self, *args, **kwargs):
        if threading.current_thread().name == "B":
            a_done.wait(timeout=3)
        return refresh(self, *args, **kwargs)

    errors = []

    def run():
        version = PluginVersion.objects.get(pk=draft.pk)
        try:
            version.refresh_from_db(fields=["status"])
        except AttributeError as error:
            errors.append(f"{threading.current_thread().name}: {error}")
        finally:
            if threading.current_thread().name == "A":
                a_done.set()

    with (
        patch.object(FSMModelMixin, "_get_protected_fsm_fields", found),
        patch.object(models.Model, "refresh_from_db", refreshed),
    ):
        a = threading.Thread(target=run, name="A")
        a.start()
        a_found.wait(timeout=5)
        b = threading.Thread(target=run, name="B")
        b.start()
        for thread in (a, b):
            thread.join(timeout=15)
    assert errors == []
    assert PluginVersion._meta.get_field("status").protected  # switched on again
