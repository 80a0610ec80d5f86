"""What every API client meets first: authentication challenges, JSON errors for any path
under /api/, and list filters that filter (or say why not)."""

import pytest
from rest_framework.test import APIClient

from tests.conftest import token_client

pytestmark = pytest.mark.django_db


def test_no_or_a_bad_token_is_a_401_with_the_challenge():
    client = APIClient()
    for headers in ({}, {"HTTP_AUTHORIZATION": "Token not-a-token"}):
        response = client.get("/api/v1/versions/", **headers)
        assert response.status_code == 401, headers
        assert response["WWW-Authenticate"] == "Token"
        assert response.json()["code"] in {"not_authenticated", "authentication_failed"}


@pytest.mark.parametrize("path", ["/api/v1/", "/api/v1/nope/", "/api/v1/versions/1/explode/", "/api/nothing"])
def test_an_unknown_path_under_api_is_a_json_404(client, platform_admin, path):
    client.force_login(platform_admin)
    response = client.get(path)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"code": "not_found", "detail": "No such endpoint.", "errors": []}


def test_an_unknown_method_is_a_json_405(platform_admin):
    response = token_client(platform_admin).delete("/api/v1/feed/")
    assert response.status_code == 405 and response.json()["code"] == "method_not_allowed"


def test_versions_filter_by_status_plugin_and_organisation_and_refuse_a_bad_value(make_approved, draft, platform_admin):
    approved = make_approved("1.0.0")
    client = APIClient()
    client.force_authenticate(platform_admin)
    ids = lambda query: {row["id"] for row in client.get(f"/api/v1/versions/?{query}").json()["results"]}  # noqa: E731
    assert ids("status=approved") == {approved.pk}
    assert ids("status=approved&status=draft") == {approved.pk, draft.pk}
    assert ids(f"plugin={approved.plugin.name}&organisation={approved.plugin.organisation.slug}") == {
        approved.pk,
        draft.pk,
    }
    assert ids("organisation=nobody") == set()
    refused = client.get("/api/v1/versions/?status=aproved")
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["field"] == "status"
    assert client.get("/api/v1/versions/?submitted_after=yesterday").status_code == 400


def test_lists_page_by_cursor_and_a_forged_cursor_is_a_json_404(make_approved, platform_admin):
    versions = [make_approved(f"1.{n}.0") for n in range(3)]
    client = token_client(platform_admin, "read")
    first = client.get("/api/v1/versions/", {"page_size": 2}).json()
    assert set(first) == {"next", "previous", "results"}
    assert [row["id"] for row in first["results"]] == [versions[2].pk, versions[1].pk]
    make_approved("2.0.0")  # a row added between pages neither repeats nor hides one
    second = client.get(first["next"]).json()
    assert [row["id"] for row in second["results"]] == [versions[0].pk] and second["next"] is None
    forged = client.get("/api/v1/versions/", {"cursor": "bz14"})  # base64 of "o=x"
    assert forged.status_code == 404 and forged.json()["code"] == "not_found"
