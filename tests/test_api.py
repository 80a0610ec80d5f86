import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from submissions import services as sub
from submissions.samples import plugin_archive

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
    token = Token.objects.create(user=board)
    api.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert api.get("/api/v1/versions/").json()["count"] == 1


def test_outsider_gets_404_not_403(api, in_review, other_author):
    api.force_authenticate(other_author)
    response = api.get(f"/api/v1/versions/{in_review.pk}/")
    assert response.status_code == 404
    assert response.json() == {"code": "not_found", "detail": "Not found.", "errors": []}
    assert api.get("/api/v1/versions/").json()["count"] == 0


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
