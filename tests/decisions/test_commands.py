from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from decisions.models import Deployment
from governance.audit import audit_verify
from governance.models import Stage
from reviews.sandbox.runner import isolation_available
from reviews.tasks import start_review
from submissions.models import PluginVersion, VersionStatus

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


@pytest.mark.skipif(not isolation_available(), reason="the demo runs its plugins in bubblewrap (bwrap)")
def test_load_demo_makes_every_state_through_the_services():
    output = run("load_demo")
    assert "acme-author" in output and "warden-demo" in output
    states = set(PluginVersion.objects.values_list("status", flat=True))
    assert states == set(VersionStatus.values)
    assert Stage.objects.count() == 5
    assert audit_verify().ok
    assert get_user_model().objects.get(username="board").check_password("warden-demo")
    running = Deployment.objects.filter(status="active").values_list("environment__key", "version__plugin__name")
    assert sorted(running) == [("production", "acme-exporter"), ("staging", "acme-exporter")]  # 1.3.0
    rolled = Deployment.objects.get(environment__key="production", status="rolled_back")
    assert (rolled.version.version, rolled.incident) == ("1.8.0", "INC-2041")

    again = run("load_demo")
    assert "already loaded" in again
    assert PluginVersion.objects.count() == 12


def test_install_default_pipeline_is_idempotent():
    assert "Created 5 stage(s)" in run("install_default_pipeline")
    assert "Created 0 stage(s): none." in run("install_default_pipeline")


def test_start_review_task_is_safe_to_run_twice(draft, author, pipeline):
    from submissions import services as sub

    sub.version_submit(version=draft, actor=author)  # no on-commit capture: the task has not run
    start_review(draft.pk)
    start_review(draft.pk)
    draft.refresh_from_db()
    assert draft.status == VersionStatus.IN_REVIEW
    assert draft.review_round == 1
    assert draft.stage_reviews.count() == 5


def test_the_manifest_reference_in_docs_is_up_to_date():
    from pathlib import Path

    from submissions.manifest_docs import manifest_reference

    doc = (Path(__file__).resolve().parents[2] / "docs" / "manifest.md").read_text()
    assert manifest_reference() in doc, "run `manage.py manifest_reference --write`"
