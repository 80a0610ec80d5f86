"""Answering a request for changes with a fix: revisions of a version, answers to threads,
and the submit / resubmit / withdraw endpoints."""

import importlib
import json
from pathlib import Path

import pytest
from django.apps import apps
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from rest_framework.test import APIClient

from governance.errors import PermissionRefused, TransitionRefused, ValidationFailed
from governance.models import AllowedLicence, AuditEvent, HostPlatform
from reviews import services as review
from reviews.checks import REGISTRY, CheckOutcome, CheckSpec
from reviews.collaboration import annotation_add
from reviews.models import Annotation, CheckRun, Finding, ReviewStatus
from submissions import services as sub
from submissions.models import PluginVersion, VersionRevision, VersionStatus
from submissions.samples import plugin_archive
from tests.conftest import current_review, open_review

pytestmark = pytest.mark.django_db

BROKEN = {"acme_exporter/broken.py": b"def f(:\n"}
FIXED = {"acme_exporter/broken.py": b"def f():\n    return 1\n"}


def artifact_files() -> set[Path]:
    return {p for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file()}


def fixed_archive(number: str = "1.4.0", **kwargs) -> SimpleUploadedFile:
    return plugin_archive("acme-exporter", number, files=kwargs.pop("files", FIXED), **kwargs)


@pytest.fixture
def tree_probe(monkeypatch, pipeline):
    """The eligibility stage also runs a check that says which unpacked tree it read (the
    engine unpacks each artifact under its SHA-256)."""
    monkeypatch.setitem(
        REGISTRY,
        "test.tree",
        CheckSpec(
            key="test.tree",
            title="test.tree",
            tool="test",
            run=lambda ctx: CheckOutcome(passed=True, summary={"tree": ctx.root.name}),
        ),
    )
    stage = pipeline["eligibility"]
    stage.checks = [*stage.checks, "test.tree"]
    stage.save()
    HostPlatform.objects.create(name="Acme Cloud", api_version="2.4", is_default=True)
    AllowedLicence.objects.create(spdx_id="MIT")
    return stage


@pytest.fixture
def sent_back(plugin, author, pipeline, platform_admin, django_capture_on_commit_callbacks):
    """A version whose eligibility reviewer asked for changes (its archive does not compile)."""

    def make(**archive):
        version = sub.version_create(
            plugin=plugin, artifact=plugin_archive(plugin.name, "1.4.0", files=BROKEN, **archive), actor=author
        )
        with django_capture_on_commit_callbacks(execute=True):
            sub.version_submit(version=version, actor=author)
        review.stage_request_changes(
            review=open_review(version, "eligibility"), actor=platform_admin, reason="broken.py does not compile."
        )
        version.refresh_from_db()
        assert version.status == VersionStatus.CHANGES_REQUESTED
        return version

    return make


@pytest.fixture
def changes_requested(sent_back):
    return sent_back()


@pytest.fixture
def thread(changes_requested, platform_admin):
    """An open thread the eligibility reviewer addressed to the authors."""
    return annotation_add(
        version=changes_requested,
        actor=platform_admin,
        body="Which Python does broken.py target?",
        to_author=True,
        stage_review=current_review(changes_requested, "eligibility"),
    )


def assert_nothing_written(version: PluginVersion, files_before: set[Path], annotations_before: int) -> None:
    before = version.sha256
    version.refresh_from_db()
    assert version.status == VersionStatus.CHANGES_REQUESTED
    assert (version.revision, version.sha256, version.review_round) == (1, before, 1)
    assert list(version.revisions.values_list("number", flat=True)) == [1]
    assert Annotation.objects.filter(version=version).count() == annotations_before
    assert not AuditEvent.objects.filter(action="version.resubmit").exists()
    assert artifact_files() == files_before


# -- the service -----------------------------------------------------------------------


def test_a_new_version_records_revision_1(draft, author):
    revision = draft.revisions.get()
    assert (revision.number, revision.sha256, revision.size, revision.artifact.name) == (
        1,
        draft.sha256,
        draft.size,
        draft.artifact.name,
    )
    assert (draft.revision, revision.created_by, revision.history.get().history_user) == (1, author, author)


def test_resubmitting_a_fix_adds_a_revision_and_the_new_round_checks_it(
    tree_probe, sent_back, author, django_capture_on_commit_callbacks
):
    version = sent_back()
    old_sha, old_file = version.sha256, version.artifact.name
    first = CheckRun.objects.get(version=version, check_key="test.tree", stage_review__round=1)
    assert first.summary["tree"] == old_sha
    assert Finding.objects.filter(version=version, rule_id="eligibility.compile").count() == 1

    with django_capture_on_commit_callbacks(execute=True):
        sub.version_resubmit(version=version, actor=author, reason="broken.py fixed.", artifact=fixed_archive())

    version.refresh_from_db()
    assert (version.status, version.review_round, version.revision) == (VersionStatus.IN_REVIEW, 2, 2)
    assert version.sha256 != old_sha and version.artifact.name != old_file
    old, new = version.revisions.order_by("number")
    assert (old.number, old.sha256, old.artifact.name) == (1, old_sha, old_file)
    assert (new.number, new.sha256, new.reason, new.created_by) == (2, version.sha256, "broken.py fixed.", author)
    assert old.artifact.storage.exists(old.artifact.name)  # the previous revision's file stays
    # the new round's checks read the new artifact: the tree probe and the real compile check
    second = CheckRun.objects.get(version=version, check_key="test.tree", stage_review__round=2)
    assert second.summary["tree"] == version.sha256
    compile_run = CheckRun.objects.get(version=version, check_key="eligibility.compile", stage_review__round=2)
    assert not compile_run.findings.exists()
    assert current_review(version, "eligibility").status == ReviewStatus.PASSED
    event = AuditEvent.objects.get(action="version.resubmit")
    assert event.data == {"revision": 2, "old_sha256": old_sha, "new_sha256": version.sha256}
    assert event.reason == "broken.py fixed."


@pytest.mark.parametrize(
    ("archive", "code"),
    [
        (lambda: fixed_archive("1.5.0"), "version_mismatch"),
        (lambda: plugin_archive("acme-other", "1.4.0"), "plugin_mismatch"),
        (lambda: fixed_archive(category="analytics"), "category_mismatch"),
        (lambda: SimpleUploadedFile("acme-exporter-1.4.0.zip", b"PK\x03\x04 not a zip"), "corrupt_archive"),
    ],
)
def test_a_refused_archive_leaves_no_row_and_no_file(changes_requested, author, archive, code):
    files = artifact_files()
    with pytest.raises(ValidationFailed) as refused:
        sub.version_resubmit(version=changes_requested, actor=author, reason="Fixed.", artifact=archive())
    assert refused.value.code == code
    assert_nothing_written(changes_requested, files, 0)


def test_the_same_archive_again_is_not_a_revision(changes_requested, author):
    with changes_requested.artifact.open("rb") as stored:  # byte for byte (a zip's members carry times)
        again = SimpleUploadedFile(changes_requested.artifact_name, stored.read())
    files = artifact_files()
    with pytest.raises(ValidationFailed) as refused:
        sub.version_resubmit(version=changes_requested, actor=author, reason="Again.", artifact=again)
    assert refused.value.code == "same_artifact"
    assert_nothing_written(changes_requested, files, 0)


def test_answers_only_reply_to_the_threads_and_keep_the_revision(
    changes_requested, thread, author, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        sub.version_resubmit(
            version=changes_requested, actor=author, reason="Answered.", answers={thread.pk: "Python 3.12."}
        )
    changes_requested.refresh_from_db()
    assert (changes_requested.status, changes_requested.revision) == (VersionStatus.IN_REVIEW, 1)
    reply = thread.replies.get()
    assert (reply.author, reply.body, reply.to_author, reply.version) == (author, "Python 3.12.", True, thread.version)
    assert AuditEvent.objects.get(action="version.resubmit").data == {"revision": 1, "answers": [thread.pk]}


def test_a_refused_answer_undoes_the_whole_step_and_its_file(
    changes_requested, thread, author, platform_admin, django_capture_on_commit_callbacks
):
    internal = annotation_add(version=changes_requested, actor=platform_admin, body="Reviewers only.")
    files = artifact_files()
    with pytest.raises(ValidationFailed) as refused:
        sub.version_resubmit(
            version=changes_requested,
            actor=author,
            reason="Fixed.",
            artifact=fixed_archive(),
            answers={thread.pk: "Python 3.12.", internal.pk: "I should not see this."},
        )
    assert (refused.value.code, refused.value.errors[0]["field"]) == ("unknown_thread", f"answers[{internal.pk}]")
    assert_nothing_written(changes_requested, files, 2)


def test_resubmit_refuses_strangers_and_the_wrong_state(in_review, other_author, author):
    files = artifact_files()
    with pytest.raises(PermissionRefused):
        sub.version_resubmit(version=in_review, actor=other_author, reason="x", artifact=fixed_archive())
    with pytest.raises(TransitionRefused):
        sub.version_resubmit(version=in_review, actor=author, reason="x", artifact=fixed_archive())
    assert artifact_files() == files
    in_review.refresh_from_db()
    assert (in_review.status, in_review.revision) == (VersionStatus.IN_REVIEW, 1)


def test_the_migration_backfills_revision_1(draft):
    draft.revisions.all().delete()
    migration = importlib.import_module("submissions.migrations.0002_version_revisions")
    migration.backfill_first_revisions(apps, None)
    revision = VersionRevision.objects.get(version=draft)
    assert (revision.number, revision.sha256, revision.artifact.name, revision.created_by_id) == (
        1,
        draft.sha256,
        draft.artifact.name,
        draft.created_by_id,
    )
    assert revision.created_at == draft.created_at


# -- the admin -------------------------------------------------------------------------


def resubmit_url(version) -> str:
    return reverse("admin:submissions_pluginversion_act", args=[version.pk, "resubmit"])


def test_admin_resubmit_form_takes_an_artifact_and_answers(
    client, changes_requested, thread, author, platform_admin, django_capture_on_commit_callbacks
):
    annotation_add(version=changes_requested, actor=platform_admin, body="Reviewers only.")  # no box for it
    client.force_login(author)
    page = client.get(resubmit_url(changes_requested))
    assert page.status_code == 200
    assert list(page.context["form"].fields) == ["reason", "artifact", f"answer_{thread.pk}"]
    assert b"Which Python does broken.py target?" in page.content and b"Reviewers only." not in page.content

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            resubmit_url(changes_requested),
            {"reason": "Fixed.", "artifact": fixed_archive(), f"answer_{thread.pk}": "Python 3.12."},
        )
    assert response.status_code == 302
    changes_requested.refresh_from_db()
    assert (changes_requested.status, changes_requested.revision) == (VersionStatus.IN_REVIEW, 2)
    assert thread.replies.get().body == "Python 3.12."

    client.force_login(platform_admin)  # the reviewer sees both revisions and can download each
    change = client.get(reverse("admin:submissions_pluginversion_change", args=[changes_requested.pk]))
    old, new = changes_requested.revisions.order_by("number")
    assert old.sha256.encode() in change.content and new.sha256.encode() in change.content
    download = client.get(
        reverse("admin:submissions_pluginversion_download", args=[changes_requested.pk]) + "?revision=1"
    )
    assert download.status_code == 200 and download["Content-Disposition"].startswith("attachment")
    with old.artifact.open("rb") as stored:
        assert b"".join(download.streaming_content) == stored.read()


def test_admin_resubmit_refusal_shows_errors_and_writes_nothing(client, changes_requested, thread, author):
    client.force_login(author)
    files = artifact_files()
    response = client.post(
        resubmit_url(changes_requested),
        {"reason": "Fixed.", "artifact": fixed_archive("2.0.0"), f"answer_{thread.pk}": "Python 3.12."},
    )
    assert response.status_code == 200
    assert response.context["form"].errors["__all__"]
    assert_nothing_written(changes_requested, files, 1)


def test_admin_outsider_gets_neither_form_nor_files(client, changes_requested, outsider):
    client.force_login(outsider)
    assert client.get(resubmit_url(changes_requested)).status_code == 404
    assert client.post(resubmit_url(changes_requested), {"reason": "x"}).status_code == 404
    url = reverse("admin:submissions_pluginversion_download", args=[changes_requested.pk]) + "?revision=1"
    assert client.get(url).status_code == 404
    changes_requested.refresh_from_db()
    assert changes_requested.status == VersionStatus.CHANGES_REQUESTED


# -- the API ---------------------------------------------------------------------------


@pytest.fixture
def api():
    return APIClient()


def test_api_resubmit_with_artifact_and_answers(
    api, changes_requested, thread, author, django_capture_on_commit_callbacks
):
    api.force_authenticate(author)
    answers = json.dumps([{"thread": thread.pk, "body": "Python 3.12."}])
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(
            f"/api/v1/versions/{changes_requested.pk}/resubmit/",
            {"reason": "Fixed.", "artifact": fixed_archive(), "answers": answers},
            format="multipart",
        )
    assert response.status_code == 200, response.json()
    body = response.json()
    changes_requested.refresh_from_db()
    assert (body["status"], body["revision"], body["sha256"]) == ("submitted", 2, changes_requested.sha256)
    assert (changes_requested.status, changes_requested.review_round) == (VersionStatus.IN_REVIEW, 2)
    assert [r["number"] for r in body["revisions"]] == [1, 2]
    assert thread.replies.get().body == "Python 3.12."


def test_api_resubmit_answers_only_as_json(api, changes_requested, thread, author):
    api.force_authenticate(author)
    response = api.post(
        f"/api/v1/versions/{changes_requested.pk}/resubmit/",
        {"reason": "Answered.", "answers": [{"thread": thread.pk, "body": "Python 3.12."}]},
        format="json",
    )
    assert response.status_code == 200, response.json()
    assert response.json()["revision"] == 1
    assert thread.replies.get().author == author


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"answers": "not json"}, "answers"),
        ({"answers": json.dumps([{"thread": 1, "body": "a"}, {"thread": 1, "body": "b"}])}, "answers"),
        ({"answers[1]": "a"}, "answers"),
        ({"answers": json.dumps([{"thread": 2**70, "body": "a"}])}, "answers.0.thread"),
        ({"reason": ""}, "reason"),
    ],
)
def test_api_resubmit_bad_input_is_a_400(api, changes_requested, author, data, field):
    api.force_authenticate(author)
    response = api.post(
        f"/api/v1/versions/{changes_requested.pk}/resubmit/", {"reason": "x", **data}, format="multipart"
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == field
    changes_requested.refresh_from_db()
    assert changes_requested.status == VersionStatus.CHANGES_REQUESTED


def test_api_resubmit_refused_archive_is_a_400_that_leaves_nothing(api, changes_requested, author):
    api.force_authenticate(author)
    files = artifact_files()
    response = api.post(
        f"/api/v1/versions/{changes_requested.pk}/resubmit/",
        {"reason": "Fixed.", "artifact": fixed_archive("9.9.9")},
        format="multipart",
    )
    assert (response.status_code, response.json()["code"]) == (400, "version_mismatch")
    assert_nothing_written(changes_requested, files, 0)


def test_api_outsider_404_reviewer_403_wrong_state_409(api, changes_requested, other_author, platform_admin, author):
    url = f"/api/v1/versions/{changes_requested.pk}/resubmit/"
    api.force_authenticate(other_author)
    response = api.post(url, {"reason": "x"}, format="multipart")
    assert (response.status_code, response.json()["code"]) == (404, "not_found")
    for action in ("submit", "withdraw"):
        assert api.post(f"/api/v1/versions/{changes_requested.pk}/{action}/", {"reason": "x"}).status_code == 404
    api.force_authenticate(platform_admin)  # may see it, is not its author
    response = api.post(url, {"reason": "x"}, format="multipart")
    assert (response.status_code, response.json()["code"]) == (403, "permission_denied")
    api.force_authenticate(author)
    response = api.post(f"/api/v1/versions/{changes_requested.pk}/submit/")
    assert response.status_code == 409
    assert response.json() == {
        "code": "invalid_transition",
        "detail": "Cannot submit acme-exporter 1.4.0: it is changes requested.",
        "errors": [],
    }
    changes_requested.refresh_from_db()
    assert changes_requested.status == VersionStatus.CHANGES_REQUESTED


def test_api_submit_then_withdraw(api, draft, author, pipeline, django_capture_on_commit_callbacks):
    api.force_authenticate(author)
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(f"/api/v1/versions/{draft.pk}/submit/")
    assert (response.status_code, response.json()["status"]) == (200, "submitted")  # the round starts after
    draft.refresh_from_db()
    assert draft.status == VersionStatus.IN_REVIEW
    response = api.post(f"/api/v1/versions/{draft.pk}/withdraw/", {}, format="json")
    assert (response.status_code, response.json()["errors"][0]["field"]) == (400, "reason")
    response = api.post(f"/api/v1/versions/{draft.pk}/withdraw/", {"reason": "Not ready."}, format="json")
    assert (response.status_code, response.json()["status"]) == (200, "withdrawn")
    draft.refresh_from_db()
    assert draft.status == VersionStatus.WITHDRAWN
    assert AuditEvent.objects.filter(action="version.withdraw", reason="Not ready.").count() == 1
    assert api.post(f"/api/v1/versions/{draft.pk}/withdraw/", {"reason": "Again."}).status_code == 409


def test_schema_documents_the_resubmit_shape(api):
    schema = api.get("/api/schema/", {"format": "json"}).json()
    operation = schema["paths"]["/api/v1/versions/{version}/resubmit/"]["post"]
    multipart = operation["requestBody"]["content"]["multipart/form-data"]["schema"]["$ref"].rsplit("/", 1)[-1]
    fields = schema["components"]["schemas"][multipart]["properties"]
    assert set(fields) == {"reason", "artifact", "answers"}
    assert {"200", "400", "403", "404", "409"} <= set(operation["responses"])
    assert "/api/v1/versions/{version}/submit/" in schema["paths"]
    assert "/api/v1/versions/{version}/withdraw/" in schema["paths"]


def test_runs_of_an_earlier_revision_no_longer_speak_for_the_version(
    changes_requested, author, django_capture_on_commit_callbacks
):
    """A report posted about revision 1 (a critical finding) does not count against the fixed
    archive of revision 2, nor does its old run make the gate think a check has run."""
    from decisions.facts import version_facts
    from tests.decisions.test_gate import sarif

    client = APIClient()
    client.force_authenticate(author)
    posted = client.post(
        f"/api/v1/versions/{changes_requested.pk}/reports/",
        {"format": "sarif", "report": SimpleUploadedFile("a.sarif", sarif("9.8"))},
        format="multipart",
    )
    assert posted.status_code == 201 and posted.json()["revision"] == 1
    before = version_facts(version=changes_requested)
    assert before["findings"]["open"]["critical"] == 1 and "external.sarif" in before["checks"]

    with django_capture_on_commit_callbacks(execute=True):
        sub.version_resubmit(version=changes_requested, actor=author, reason="Fixed.", artifact=fixed_archive())
    changes_requested.refresh_from_db()
    assert changes_requested.revision == 2
    after = version_facts(version=changes_requested)
    assert after["findings"]["open"]["critical"] == 0
    assert "external.sarif" not in after["checks"]
    assert set(
        CheckRun.objects.filter(version=changes_requested, revision=2).values_list("check_key", flat=True)
    ) == set(after["checks"])


def test_checks_of_a_stage_waived_before_it_started_are_skipped_not_passed(
    full_pipeline, draft, author, platform_admin, django_capture_on_commit_callbacks
):
    from decisions.facts import version_facts

    full_pipeline["eligibility"].auto_pass = False
    full_pipeline["eligibility"].save()
    with django_capture_on_commit_callbacks(execute=True):
        sub.version_submit(version=draft, actor=author)
    review.stage_waive(review=current_review(draft, "security"), actor=platform_admin, reason="Not needed here.")
    checks = version_facts(version=draft)["checks"]
    assert checks["security.bandit"] == "skipped" and checks["performance.harness"] == "not_run"


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_failure_after_the_commit_keeps_the_new_revisions_file(changes_requested, author, monkeypatch):
    """The broker refusing the start-review task after a real commit must not delete the
    archive that the committed revision points to."""
    import submissions.services as services

    def broker_down(*args, **kwargs):
        raise ConnectionError("broker down")

    monkeypatch.setattr(services, "async_task", broker_down)
    with pytest.raises(ConnectionError):
        sub.version_resubmit(version=changes_requested, actor=author, reason="Fixed.", artifact=fixed_archive())
    changes_requested.refresh_from_db()
    assert changes_requested.revision == 2
    assert changes_requested.artifact.storage.exists(changes_requested.artifact.name)
