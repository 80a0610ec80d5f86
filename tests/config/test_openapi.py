"""The OpenAPI schema is committed (docs/openapi.yaml): an API change that forgets it fails here,
and the documentation pages load nothing from outside."""

from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection

SCHEMA = Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml"


@pytest.mark.skipif(
    connection.vendor != "sqlite",
    reason="integer bounds in the schema follow the database; it is generated and committed with SQLite (make schema)",
)
def test_the_committed_schema_is_the_one_the_code_generates(tmp_path):
    generated = tmp_path / "openapi.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(generated))
    assert generated.read_text() == SCHEMA.read_text(), (
        "The API changed: run `make schema` and commit docs/openapi.yaml."
    )


def test_the_api_documentation_is_served_from_our_own_static_files(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("reader", is_staff=True))
    for page in ("/api/docs/", "/api/redoc/"):
        html = client.get(page).content.decode()
        assert "/static/drf_spectacular_sidecar/" in html, page
        assert "cdn.jsdelivr.net" not in html and "unpkg.com" not in html, page
