import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from submissions import services as sub
from submissions.models import PluginVersion
from submissions.samples import plugin_archive
from tests.conftest import token_client, token_key

pytestmark = pytest.mark.django_db


@pytest.fixture
def api():
    return APIClient()


def test_version_detail_shows_status_and_current_stages(api, in_review, author):
    api.force_authenticate(author)
    response = api.get(f"/api/v1/versions/{in_review.pk}/")
    assert response.status_code == 200
    body = response.json()
    assert (body["plugin"], body["version"], body["status"], body["review_round"]) == (
        "acme-exporter",
        "1.4.0",
        "in_review",
        1,
    )
    assert [(s["stage"], s["status"]) for s in body["stages"]] == [
        ("eligibility", "in_progress"),
        ("compliance", "pending"),
        ("performance", "pending"),
        ("security", "pending"),
        ("decision", "pending"),
    ]
    assert response["X-Request-ID"]


def test_token_authentication(api, in_review, board):
    api.credentials(HTTP_AUTHORIZATION=f"Token {token_key(board, 'read')}")
    assert len(api.get("/api/v1/versions/").json()["results"]) == 1


def test_outsider_gets_404_not_403(api, in_review, other_author):
    api.force_authenticate(other_author)
    response = api.get(f"/api/v1/versions/{in_review.pk}/")
    assert response.status_code == 404
    assert response.json() == {"code": "not_found", "detail": "Not found.", "errors": []}
    assert len(api.get("/api/v1/versions/").json()["results"]) == 0


def test_anonymous_is_refused_with_json(api, in_review):
    response = api.get("/api/v1/versions/")
    assert response.status_code in (401, 403)
    assert response.json()["code"] == "not_authenticated"


def test_list_runs_a_constant_number_of_queries(
    api, plugin, author, pipeline, board, django_capture_on_commit_callbacks
):
    def queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert api.get("/api/v1/versions/").status_code == 200
        return len(ctx)

    api.force_authenticate(board)
    queries()  # warm per-process caches (content types, the user's permissions)
    counts = []
    for number in ("1.0.0", "1.1.0", "1.2.0"):
        version = sub.version_create(plugin=plugin, artifact=plugin_archive(plugin.name, number), actor=author)
        with django_capture_on_commit_callbacks(execute=True):
            sub.version_submit(version=version, actor=author)
        counts.append(queries())
    assert counts[0] == counts[-1]


def test_request_id_is_echoed_when_safe(api, board):
    api.force_authenticate(board)
    assert api.get("/api/v1/versions/", HTTP_X_REQUEST_ID="ci-run-42")["X-Request-ID"] == "ci-run-42"
    assert api.get("/api/v1/versions/", HTTP_X_REQUEST_ID="bad id\nwith newline")["X-Request-ID"] != "bad id"


def test_schema_is_served(api):
    assert api.get("/api/schema/").status_code == 200


# -- submitting over the API -------------------------------------------------------------


def upload(api, plugin, artifact, **extra):
    return api.post(f"/api/v1/plugins/{plugin.pk}/versions/", {"artifact": artifact, **extra}, format="multipart")


def test_ci_submits_a_version(api, plugin, author, pipeline, django_capture_on_commit_callbacks):
    api.force_authenticate(author)
    with django_capture_on_commit_callbacks(execute=True):
        response = upload(api, plugin, plugin_archive(plugin.name, "3.0.0"))
    assert response.status_code == 201
    body = response.json()
    assert (body["version"], body["status"]) == ("3.0.0", "submitted")
    version = PluginVersion.objects.get(pk=body["id"])
    assert version.status == "in_review"  # the worker started it after commit
    detail = api.get(f"/api/v1/versions/{version.pk}/").json()
    assert {run["check_key"] for run in detail["check_runs"]} == set(pipeline["eligibility"].checks)
    assert detail["findings"]["high"] >= 1  # no host platform or licence is configured here


def test_draft_only_when_asked(api, plugin, author):
    api.force_authenticate(author)
    response = upload(api, plugin, plugin_archive(plugin.name, "3.0.0"), submit="false")
    assert (response.status_code, response.json()["status"]) == (201, "draft")


def test_hostile_upload_answers_400_with_every_reason(api, plugin, author):
    import io
    import zipfile

    from django.core.files.uploadedfile import SimpleUploadedFile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("../escape.py", "x")
        archive.writestr("/etc/passwd", "x")
    api.force_authenticate(author)
    response = upload(api, plugin, SimpleUploadedFile("evil.zip", buffer.getvalue()))
    assert response.status_code == 400
    assert response.json() == {
        "code": "invalid_archive",
        "detail": "The archive was refused.",
        "errors": [
            {"field": "../escape.py", "code": "path_traversal", "message": "'..' in a path is not allowed."},
            {
                "field": "/etc/passwd",
                "code": "absolute_path",
                "message": "Absolute paths and drive letters are not allowed.",
            },
        ],
    }
    assert not PluginVersion.objects.exists()


def test_missing_artifact_is_a_400(api, plugin, author):
    api.force_authenticate(author)
    response = api.post(f"/api/v1/plugins/{plugin.pk}/versions/", {}, format="multipart")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert response.json()["errors"][0]["field"] == "artifact"


def test_duplicate_version_is_a_400(api, plugin, author):
    api.force_authenticate(author)
    assert upload(api, plugin, plugin_archive(plugin.name, "3.0.0"), submit="false").status_code == 201
    response = upload(api, plugin, plugin_archive(plugin.name, "3.0.0"))
    assert (response.status_code, response.json()["code"]) == (400, "duplicate_version")


def test_outsiders_cannot_upload(api, plugin, other_author, board):
    for user in (other_author, board):
        api.force_authenticate(user)
        response = upload(api, plugin, plugin_archive(plugin.name, "3.0.0"))
        assert response.status_code in (403, 404)
    assert not PluginVersion.objects.exists()


def test_a_ci_job_finds_its_plugins_id_by_name(plugin, author, other_author, acme):
    client = token_client(author, "submit", organisation=acme)
    found = client.get("/api/v1/plugins/", {"name": plugin.name}).json()["results"]
    assert [(row["id"], row["organisation"]) for row in found] == [(plugin.pk, acme.slug)]
    assert client.get(f"/api/v1/plugins/{plugin.pk}/").json()["name"] == plugin.name
    stranger = token_client(other_author, "read")
    assert stranger.get("/api/v1/plugins/", {"name": plugin.name}).json()["results"] == []
    assert stranger.get(f"/api/v1/plugins/{plugin.pk}/").status_code == 404
