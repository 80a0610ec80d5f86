"""A busy database (a lock, a deadlock, a serialization failure) is a 503 with Retry-After,
never a 500, and changes nothing (governance/contention.py)."""

from unittest.mock import patch

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import OperationalError
from django.db.models import QuerySet
from django.test import Client

from governance.contention import is_contention
from reviews.models import CheckRun
from submissions.models import IntegrationToken
from tests.conftest import token_client
from tests.decisions.test_gate import sarif

pytestmark = pytest.mark.django_db
LOCKED = OperationalError("database is locked")


class PostgresError(Exception):
    def __init__(self, sqlstate):
        self.sqlstate = sqlstate


def wrapped(sqlstate: str) -> OperationalError:
    error = OperationalError("could not serialize access")
    error.__cause__ = PostgresError(sqlstate)
    return error


def test_contention_is_a_lock_a_deadlock_a_serialization_failure_or_a_timeout_and_nothing_else():
    assert is_contention(LOCKED) and is_contention(OperationalError("database table is locked"))
    assert all(is_contention(wrapped(state)) for state in ("40001", "40P01", "55P03", "57014"))
    assert not is_contention(OperationalError("no such table: reviews_finding"))
    assert not is_contention(wrapped("42P01"))  # undefined table: a bug, a 500
    assert not is_contention(ValueError("database is locked"))


def test_a_report_the_database_is_too_busy_to_store_is_a_503_and_stores_nothing(in_review, author):
    runs = CheckRun.objects.count()
    with patch("decisions.api.report_attach", side_effect=LOCKED):
        response = token_client(author, "report").post(
            f"/api/v1/versions/{in_review.pk}/reports/",
            {"format": "sarif", "report": SimpleUploadedFile("a.sarif", sarif("9.8"))},
        )
    assert response.status_code == 503 and response["Retry-After"] == "2"
    assert response.json() == {"code": "busy", "detail": response.json()["detail"], "errors": []}
    assert CheckRun.objects.count() == runs


def test_a_busy_admin_page_is_a_503_with_retry_after(platform_admin):
    client = Client(raise_request_exception=False)
    client.force_login(platform_admin)
    with patch("config.admin_site._first", side_effect=wrapped("40P01")):
        response = client.get("/admin/")
    assert response.status_code == 503 and response["Retry-After"] == "2"
    with patch("config.admin_site._first", side_effect=OperationalError("no such column")):
        assert client.get("/admin/").status_code == 500  # not contention: a bug, shown as one


def test_noting_a_tokens_use_gives_way_to_a_busy_database(platform_admin):
    update = QuerySet.update

    def busy_for_tokens(self, **fields):
        if self.model is IntegrationToken:
            raise LOCKED
        return update(self, **fields)

    client = token_client(platform_admin, "read")
    with patch.object(QuerySet, "update", busy_for_tokens):
        assert client.get("/api/v1/versions/").status_code == 200
    assert IntegrationToken.objects.get().last_used_at is None  # noted by a later request
