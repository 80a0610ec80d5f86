"""Reviewers work in the admin: queues, version pages, transition buttons and actions."""

import json
import os
from datetime import timedelta

import pytest
import time_machine
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from reviews.models import ReviewStatus, StageReview
from submissions import services as sub
from submissions.models import PluginVersion, VersionStatus
from submissions.samples import plugin_archive
from tests.conftest import current_review, open_review

pytestmark = pytest.mark.django_db

VERSIONS = reverse("admin:submissions_pluginversion_changelist")
REVIEWS = reverse("admin:reviews_stagereview_changelist")


def submit_many(plugin, author, count: int, capture) -> list[PluginVersion]:
    versions = []
    for i in range(count):
        version = sub.version_create(plugin=plugin, artifact=plugin_archive(plugin.name, f"0.{i}.0"), actor=author)
        with capture(execute=True):
            sub.version_submit(version=version, actor=author)
        versions.append(version)
    return versions


def act_url(obj, action: str) -> str:
    return reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_act", args=[obj.pk, action])


# -- constant queries ------------------------------------------------------------------


@pytest.mark.parametrize("rows", [5, 50])
@pytest.mark.parametrize(
    ("url", "who", "queries"),
    [
        # each count includes the header's unread notifications (one query) and which list
        # actions the user holds the object permission for (one query)
        (VERSIONS, "board", 12),
        (VERSIONS, "author", 12),
        (REVIEWS, "platform_admin", 11),
        (REVIEWS, "security", 11),
    ],
)
def test_changelists_run_a_constant_number_of_queries(
    rows,
    url,
    who,
    queries,
    request,
    client,
    plugin,
    author,
    pipeline,
    django_assert_num_queries,
    django_capture_on_commit_callbacks,
):
    for stage in pipeline.values():  # the checks are not what this test measures; skip their cost
        stage.checks = []
        stage.save()
    submit_many(plugin, author, rows, django_capture_on_commit_callbacks)
    client.force_login(request.getfixturevalue(who))
    client.get(url)  # warm the per-process caches (content types), which are not per-row work
    with django_assert_num_queries(queries):
        response = client.get(url)
    assert response.status_code == 200
    listed = response.context["cl"].result_count
    assert listed == (rows if url == VERSIONS else rows * (5 if who == "platform_admin" else 1))


# -- who sees what ---------------------------------------------------------------------


def test_author_sees_only_its_organisations_versions(client, in_review, other_author):
    client.force_login(other_author)
    assert client.get(VERSIONS).context["cl"].result_count == 0
    page = reverse("admin:submissions_pluginversion_change", args=[in_review.pk])
    assert client.get(page).status_code == 404  # as an object that exists nowhere
    assert client.get(act_url(in_review, "withdraw")).status_code == 404


def test_reviewer_sees_only_its_stage_reviews(client, in_review, security, platform_admin):
    review_ = open_review(in_review, "eligibility")
    client.force_login(security)
    listed = client.get(REVIEWS).context["cl"].result_list
    assert [r.stage.key for r in listed] == ["security"]
    assert client.get(act_url(review_, "pass")).status_code == 404


def test_outsider_sees_nothing(client, in_review, outsider):
    client.force_login(outsider)
    assert client.get(VERSIONS).context["cl"].result_count == 0
    assert client.get(REVIEWS).context["cl"].result_count == 0
    assert client.post(act_url(in_review, "withdraw"), {"reason": "x"}).status_code == 404
    in_review.refresh_from_db()
    assert in_review.status == VersionStatus.IN_REVIEW


def test_no_status_is_editable(client, in_review, platform_admin):
    client.force_login(platform_admin)
    page = client.get(reverse("admin:reviews_stagereview_change", args=[open_review(in_review, "eligibility").pk]))
    assert page.status_code == 200
    assert 'name="status"' not in page.content.decode()
    assert client.post(page.request["PATH_INFO"], {"status": "passed"}).status_code == 403


# -- transitions from the admin --------------------------------------------------------


def test_object_button_passes_a_stage_through_the_service(client, in_review, platform_admin):
    eligibility = open_review(in_review, "eligibility")
    client.force_login(platform_admin)
    page = client.get(reverse("admin:reviews_stagereview_change", args=[eligibility.pk])).content.decode()
    assert act_url(eligibility, "pass") in page and act_url(eligibility, "waive") in page
    response = client.post(act_url(eligibility, "pass"), {"reason": "Looks fine."}, follow=True)
    assert "Pass: done" in response.content.decode()
    eligibility.refresh_from_db()
    assert eligibility.status == ReviewStatus.PASSED and eligibility.decision_reason == "Looks fine."
    assert eligibility.history.first().history_user == platform_admin


def test_refused_button_reports_why_and_changes_nothing(client, in_review, platform_admin):
    eligibility = open_review(in_review, "eligibility")
    client.force_login(platform_admin)
    response = client.post(act_url(eligibility, "fail"), {"reason": ""})
    assert response.status_code == 200 and "This field is required" in response.content.decode()
    response = client.post(act_url(current_review(in_review, "security"), "pass"), {}, follow=True)
    assert "Pass refused for" in response.content.decode()
    assert "platform is not a reviewer of the Security review stage" in response.content.decode()
    eligibility.refresh_from_db()
    assert eligibility.status == ReviewStatus.IN_PROGRESS


def test_service_refusal_becomes_an_error_message(client, in_review, platform_admin):
    eligibility = open_review(in_review, "eligibility")
    sub_review = current_review(in_review, "decision")
    client.force_login(platform_admin)
    response = client.post(act_url(sub_review, "waive"), {"reason": "skip it"}, follow=True)
    assert "Waive refused for" in response.content.decode()
    assert "decided by approving or rejecting" in response.content.decode()
    eligibility.refresh_from_db()
    assert eligibility.status == ReviewStatus.IN_PROGRESS


def test_bulk_claim_reports_counts(
    client, plugin, author, pipeline, platform_admin, django_capture_on_commit_callbacks
):
    submit_many(plugin, author, 3, django_capture_on_commit_callbacks)
    reviews = StageReview.objects.filter(stage__key="eligibility")
    client.force_login(platform_admin)
    response = client.post(REVIEWS, {"action": "act_claim", "_selected_action": [r.pk for r in reviews]}, follow=True)
    assert "Claim: 3 of 3 done." in response.content.decode()
    assert set(StageReview.objects.filter(stage__key="eligibility").values_list("assignee", flat=True)) == {
        platform_admin.pk
    }


def test_bulk_action_asks_for_a_reason_first(client, in_review, platform_admin):
    eligibility = open_review(in_review, "eligibility")
    client.force_login(platform_admin)
    form = {"action": "act_fail", "_selected_action": [eligibility.pk]}
    response = client.post(REVIEWS, form)
    assert "Fail: confirm" in response.content.decode()
    response = client.post(REVIEWS, {**form, "confirm": "1", "reason": "Licence not allowed."}, follow=True)
    assert "Fail: 1 of 1 done." in response.content.decode()
    in_review.refresh_from_db()
    assert in_review.status == VersionStatus.REJECTED


def test_author_uploads_a_version_in_the_admin(client, plugin, author):
    client.force_login(author)
    response = client.post(
        reverse("admin:submissions_pluginversion_add"),
        {"plugin": plugin.pk, "artifact": plugin_archive(plugin.name, "2.0.0")},
    )
    version = PluginVersion.objects.get()
    assert response.status_code == 302
    assert (version.version, version.status, version.created_by) == ("2.0.0", VersionStatus.DRAFT, author)
    assert version.manifest["plugin"]["name"] == plugin.name


def test_refused_upload_leaves_no_row_and_no_file(client, plugin, author):
    client.force_login(author)
    files_before = _stored_files()
    bad = plugin_archive(plugin.name, "not a version")
    response = client.post(reverse("admin:submissions_pluginversion_add"), {"plugin": plugin.pk, "artifact": bad})
    assert response.status_code == 200
    assert "is not a PEP 440 version" in response.content.decode()
    assert not PluginVersion.objects.exists()
    assert _stored_files() == files_before


def test_duplicate_version_is_refused_and_its_file_removed(plugin, author):
    sub.version_create(plugin=plugin, artifact=plugin_archive(plugin.name, "1.0.0"), actor=author)
    files_before = _stored_files()
    from governance.errors import ValidationFailed

    with pytest.raises(ValidationFailed, match="already submitted"):
        sub.version_create(plugin=plugin, artifact=plugin_archive(plugin.name, "1.0.0"), actor=author)
    assert PluginVersion.objects.count() == 1
    assert _stored_files() == files_before


def _stored_files() -> set[str]:
    found = set()
    for root, _dirs, files in os.walk(settings.MEDIA_ROOT):
        found.update(os.path.join(root, f) for f in files)
    return found


# -- the index -------------------------------------------------------------------------


def test_index_shows_my_reviews_and_what_is_overdue(client, in_review, platform_admin):
    from reviews import services as review

    eligibility = open_review(in_review, "eligibility")
    review.stage_claim(review=eligibility, actor=platform_admin)
    client.force_login(platform_admin)
    with time_machine.travel(timezone.now() + timedelta(hours=25)):
        response = client.get(reverse("admin:index"))
    assert response.context["my_reviews"] == [eligibility]
    assert response.context["overdue_reviews"] == [eligibility]
    assert "(overdue)" in response.content.decode()


def test_history_and_audit_trail_on_the_version_page(client, in_review, board):
    client.force_login(board)
    page = client.get(reverse("admin:submissions_pluginversion_change", args=[in_review.pk])).content.decode()
    assert "version.start" in page and "stage.start" in page
    history = client.get(reverse("admin:submissions_pluginversion_history", args=[in_review.pk]))
    assert history.status_code == 200 and "version.submit" in history.content.decode()


@pytest.mark.parametrize(
    ("artifact", "code"),
    [
        (SimpleUploadedFile("p.zip", b""), "empty_archive"),
        (SimpleUploadedFile("p.exe", b"MZ"), "unsupported_archive"),
        (SimpleUploadedFile("p.zip", b"PK\x03\x04 not really"), "corrupt_archive"),
        (SimpleUploadedFile("p.tar.gz", b"\x1f\x8b garbage"), "corrupt_archive"),
    ],
)
def test_unreadable_uploads_are_refused_with_a_code(plugin, author, artifact, code):
    from governance.errors import ValidationFailed

    with pytest.raises(ValidationFailed) as refused:
        sub.version_create(plugin=plugin, artifact=artifact, actor=author)
    assert refused.value.code == code
    assert not PluginVersion.objects.exists()


def test_oversized_upload_is_refused_before_reading(plugin, author, settings):
    from governance.errors import ValidationFailed

    settings.WARDEN_MAX_ARTIFACT_BYTES = 100
    with pytest.raises(ValidationFailed, match="larger than 100 bytes"):
        sub.version_create(plugin=plugin, artifact=plugin_archive(plugin.name, "1.0.0"), actor=author)


def test_tar_gz_archive_is_read(plugin, author):
    import io
    import tarfile

    from submissions.samples import MANIFEST_TEMPLATE

    manifest = MANIFEST_TEMPLATE.format(
        name=plugin.name, version="3.1.0", module="acme_exporter", category="data-connector"
    ).encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        info = tarfile.TarInfo("plugin.toml")
        info.size = len(manifest)
        archive.addfile(info, io.BytesIO(manifest))
    upload = SimpleUploadedFile("acme-exporter-3.1.0.tar.gz", buffer.getvalue())
    version = sub.version_create(plugin=plugin, artifact=upload, actor=author)
    assert version.version == "3.1.0"
    assert version.size == len(buffer.getvalue())
    assert version.artifact.read() == buffer.getvalue()


# -- nothing bypasses the services, nothing is a 500 -----------------------------------


def test_history_revert_is_refused(client, in_review, author, platform_admin):
    eligibility = open_review(in_review, "eligibility")
    from reviews import services as review

    review.stage_fail(review=eligibility, actor=platform_admin, reason="Licence not allowed.")
    old = eligibility.history.filter(status=ReviewStatus.IN_PROGRESS).earliest("history_date")
    client.force_login(author)
    url = reverse("admin:reviews_stagereview_simple_history", args=[eligibility.pk, old.history_id])
    assert client.get(url).status_code == 200
    assert client.post(url, {}).status_code == 403
    eligibility.refresh_from_db()
    assert eligibility.status == ReviewStatus.FAILED


@pytest.mark.parametrize(
    "path",
    [
        "/admin/reviews/stagereview/abc/history/",
        "/admin/reviews/stagereview/abc/history/1/",
        "/admin/submissions/pluginversion/abc/act/withdraw/",
        "/admin/submissions/pluginversion/999999/act/withdraw/",
        "/admin/reviews/stagereview/1/act/no-such-action/",
    ],
)
def test_bad_ids_and_actions_are_not_500s(client, in_review, board, path):
    client.force_login(board)
    assert client.get(path).status_code in (302, 403, 404)


def test_bad_selection_in_a_bulk_action_is_refused(client, in_review, platform_admin):
    client.force_login(platform_admin)
    response = client.post(REVIEWS, {"action": "act_claim", "_selected_action": ["abc"]}, follow=True)
    assert "The selection is not valid" in response.content.decode()


def test_duplicate_organisation_in_the_admin_is_a_form_error(client, acme, platform_admin):
    client.force_login(platform_admin)
    response = client.post(reverse("admin:submissions_organisation_add"), {"name": "Acme Corp", "slug": "acme"})
    assert response.status_code == 200
    assert "already exists" in response.content.decode()


def stage_form(stage, **changes) -> dict:
    """The stage's change form as a browser posts it (with the hidden initial value Django
    renders for fields with a callable default), with ``changes``."""
    form = {
        "key": stage.key,
        "name": stage.name,
        "kind": stage.kind,
        "order": stage.order,
        "owner_group": stage.owner_group_id,
        "escalation_group": stage.escalation_group_id,
        "sla_hours": stage.sla_hours,
        "blocking": "on" if stage.blocking else "",
        "auto_pass": "on" if stage.auto_pass else "",
        "active": "on" if stage.active else "",
        "checks": json.dumps(stage.checks),
        "initial-checks": json.dumps(stage.checks),
        "reminder_fractions": json.dumps(stage.reminder_fractions),
        "initial-reminder_fractions": json.dumps(stage.reminder_fractions),
        "escalation_repeat_hours": stage.escalation_repeat_hours,
        "calendar": stage.calendar_id or "",
        "description": stage.description,
    }
    return {**form, **changes}


def test_stage_configuration_is_audited(client, pipeline, platform_admin):
    from governance.models import AuditEvent

    stage = pipeline["eligibility"]
    client.force_login(platform_admin)
    form = stage_form(stage, sla_hours=12)
    response = client.post(reverse("admin:governance_stage_change", args=[stage.pk]), form)
    assert response.status_code == 302
    stage.refresh_from_db()
    assert stage.sla_hours == 12
    event = AuditEvent.objects.filter(action="stage.configure").get()
    assert (event.actor, event.data) == (platform_admin, {"changed": ["sla_hours"]})
    assert stage.history.first().history_user == platform_admin


def test_author_filters_do_not_name_other_organisations(client, in_review, other_author, globex):
    from submissions.services import plugin_create

    plugin_create(organisation=globex, name="globex-sync", category="data-connector", actor=other_author)
    client.force_login(other_author)
    for url in (VERSIONS, reverse("admin:submissions_plugin_changelist")):
        assert "Acme Corp" not in client.get(url).content.decode()


def test_version_page_runs_a_constant_number_of_queries_across_rounds(
    client, in_review, author, board, compliance, platform_admin, django_capture_on_commit_callbacks
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from reviews import services as review

    page = reverse("admin:submissions_pluginversion_change", args=[in_review.pk])
    client.force_login(board)
    client.get(page)
    counts = []
    for round_ in (1, 2, 3):
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(page).status_code == 200
        counts.append(len(ctx))
        if round_ < 3:
            review.stage_pass(review=open_review(in_review, "eligibility"), actor=platform_admin)
            review.stage_request_changes(review=open_review(in_review, "compliance"), actor=compliance, reason="More.")
            with django_capture_on_commit_callbacks(execute=True):
                sub.version_resubmit(version=in_review, actor=author, reason="Done.")
    assert counts[0] == counts[1] == counts[2], counts


def test_stage_review_page_shows_its_audit_trail(client, in_review, platform_admin):
    eligibility = open_review(in_review, "eligibility")
    client.force_login(platform_admin)
    page = client.get(reverse("admin:reviews_stagereview_change", args=[eligibility.pk])).content.decode()
    assert "stage.open" in page and "stage.start" in page


def test_author_sees_the_stages_of_its_own_version(client, in_review, author):
    client.force_login(author)
    page = client.get(reverse("admin:submissions_pluginversion_change", args=[in_review.pk]))
    assert [row.original.stage.key for row in page.context["inline_admin_formsets"][0]] == [
        "eligibility",
        "compliance",
        "performance",
        "security",
        "decision",
    ]


def test_configuration_and_advisory_pages_load(client, platform_admin, security, pipeline):
    from django.core.management import call_command

    call_command("import_advisories", "tests/fixtures/osv", verbosity=0)
    client.force_login(platform_admin)
    for name in ("governance_hostplatform", "governance_allowedlicence", "reviews_advisory", "governance_stage"):
        assert client.get(reverse(f"admin:{name}_changelist")).status_code == 200
    client.force_login(security)
    page = client.get(reverse("admin:reviews_advisory_changelist") + "?q=requests")
    assert page.status_code == 200
    assert {a.osv_id for a in page.context["cl"].result_list} >= {"GHSA-j8r2-6x86-q33q"}


def test_stage_checks_must_be_known(client, pipeline, platform_admin):
    stage = pipeline["security"]
    client.force_login(platform_admin)
    form = stage_form(stage, checks='["security.bandit", "security.nonsense"]')
    response = client.post(reverse("admin:governance_stage_change", args=[stage.pk]), form)
    assert response.status_code == 200
    assert "Unknown checks: security.nonsense" in response.content.decode()


def test_reminder_fractions_must_be_fractions(client, pipeline, platform_admin):
    stage = pipeline["security"]
    client.force_login(platform_admin)
    response = client.post(
        reverse("admin:governance_stage_change", args=[stage.pk]), stage_form(stage, reminder_fractions='["50%", 1.5]')
    )
    assert response.status_code == 200
    assert "A list of fractions between 0 and 1" in response.content.decode()
