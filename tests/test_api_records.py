"""Threads, exemptions and deployments over REST (reviews/threads_api.py,
decisions/records_api.py): each caller reads what the admin would show them and nothing
else (another's is a 404, as a missing one), and a reply is the admin's reply."""

from datetime import timedelta

import pytest
from django.utils import timezone

from decisions import deployment
from decisions.exemptions import exemption_request
from reviews.collaboration import annotation_add, annotation_resolve
from reviews.models import Annotation
from tests.conftest import last_audit, token_client
from tests.decisions.test_policies import load, policy_yaml

pytestmark = pytest.mark.django_db
THREADS = "/api/v1/threads/"


@pytest.fixture
def threads(in_review, security):
    """A thread among reviewers and one addressed to the authors, on the version in review."""
    internal = annotation_add(version=in_review, actor=security, body="Is the subprocess call reachable?")
    to_author = annotation_add(
        version=in_review, actor=security, body="Please explain the outbound call.", to_author=True
    )
    return internal, to_author


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content[:300]
    return [row["id"] for row in response.json()["results"]]


def test_reviewers_read_every_thread_authors_those_addressed_to_them(threads, security, author, other_author):
    internal, to_author = threads

    assert ids(token_client(security, "read").get(THREADS)) == [to_author.pk, internal.pk]
    assert ids(token_client(author, "read").get(THREADS)) == [to_author.pk]
    assert ids(token_client(other_author, "read").get(THREADS)) == []
    assert token_client(author, "read").get(f"{THREADS}{internal.pk}/").status_code == 404
    assert token_client(other_author, "read").get(f"{THREADS}{to_author.pk}/").status_code == 404


def test_an_author_replies_in_a_thread_addressed_to_them_as_in_the_admin(threads, author, security):
    _internal, to_author = threads

    response = token_client(author, "submit").post(
        f"{THREADS}{to_author.pk}/replies/", {"body": "It posts metrics to the host only."}, format="json"
    )

    assert response.status_code == 201, response.content
    (reply,) = response.json()["replies"]
    assert (reply["author"], reply["body"]) == (author.username, "It posts metrics to the host only.")
    stored = Annotation.objects.get(pk=reply["id"])
    assert (stored.parent_id, stored.to_author) == (to_author.pk, True)
    assert last_audit(to_author.version).action == "annotation.add"
    detail = token_client(security, "read").get(f"{THREADS}{to_author.pk}/").json()
    assert [r["id"] for r in detail["replies"]] == [reply["id"]]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [({"body": ""}, 400, "invalid"), ({"body": "ok", "kind": "shout"}, 400, "invalid"), ({}, 400, "invalid")],
)
def test_a_reply_without_a_body_or_with_a_wrong_kind_is_refused_and_writes_nothing(
    threads, security, body, status, code
):
    _internal, to_author = threads
    before = Annotation.objects.count()

    response = token_client(security, "triage").post(f"{THREADS}{to_author.pk}/replies/", body, format="json")

    assert response.status_code == status
    assert response.json()["code"] == code
    assert Annotation.objects.count() == before


def test_no_reply_to_a_resolved_thread_nor_to_one_the_caller_may_not_read(threads, security, author, other_author):
    internal, to_author = threads
    annotation_resolve(annotation=to_author, actor=security)
    before = Annotation.objects.count()

    resolved = token_client(security, "triage").post(f"{THREADS}{to_author.pk}/replies/", {"body": "x"}, format="json")
    hidden = token_client(author, "submit").post(f"{THREADS}{internal.pk}/replies/", {"body": "x"}, format="json")
    other = token_client(other_author, "submit").post(f"{THREADS}{to_author.pk}/replies/", {"body": "x"}, format="json")

    assert resolved.status_code == 409
    assert (hidden.status_code, other.status_code) == (404, 404)
    assert Annotation.objects.count() == before
    assert ids(token_client(security, "read").get(f"{THREADS}?resolved=true")) == [to_author.pk]
    assert ids(token_client(security, "read").get(f"{THREADS}?resolved=false")) == [internal.pk]


def test_replies_are_not_threads_of_their_own(threads, security, author):
    _internal, to_author = threads
    reply = annotation_add(version=to_author.version, actor=author, body="Answer.", parent=to_author)

    assert reply.pk not in ids(token_client(security, "read").get(THREADS))
    assert token_client(security, "read").get(f"{THREADS}{reply.pk}/").status_code == 404


def test_exemptions_are_read_by_those_who_see_the_plugin(tmp_path, in_review, author, other_author, board):
    load(tmp_path, critical=policy_yaml("no-critical", "findings.open.critical == 0", message="Fix criticals."))
    exemption = exemption_request(
        actor=author,
        plugin=in_review.plugin,
        scope="version",
        version=in_review,
        policy_key="no-critical",
        justification="Only reachable from the admin console.",
        expires_at=timezone.now() + timedelta(days=30),
    )

    mine = token_client(author, "read").get("/api/v1/exemptions/?status=requested")
    assert ids(mine) == [exemption.pk]
    assert (
        mine.json()["results"][0] | {"requested_by": author.username, "policy_key": "no-critical"}
        == (mine.json()["results"][0])
    )
    assert ids(token_client(board, "read").get(f"/api/v1/exemptions/?plugin={in_review.plugin_id}")) == [exemption.pk]
    assert ids(token_client(board, "read").get("/api/v1/exemptions/?status=approved")) == []
    assert ids(token_client(other_author, "read").get("/api/v1/exemptions/")) == []
    assert token_client(other_author, "read").get(f"/api/v1/exemptions/{exemption.pk}/").status_code == 404
    assert token_client(board, "read").get("/api/v1/exemptions/?status=granted").status_code == 400


def test_deployments_say_where_a_version_runs(make_approved, environment, platform_admin, author, other_author):
    version = make_approved("1.0.0")
    deployed = deployment.version_deploy(version=version, environment=environment, actor=platform_admin)

    row = token_client(author, "read").get("/api/v1/deployments/?environment=production&status=active").json()
    assert [r["id"] for r in row["results"]] == [deployed.pk]
    assert (
        row["results"][0] | {"version": version.pk, "plugin": version.plugin_id, "environment": "production"}
        == (row["results"][0])
    )
    assert ids(token_client(platform_admin, "feed").get(f"/api/v1/deployments/?version={version.pk}")) == [deployed.pk]
    assert ids(token_client(author, "read").get("/api/v1/deployments/?status=revoked")) == []
    assert ids(token_client(other_author, "read").get("/api/v1/deployments/")) == []
    assert token_client(other_author, "read").get(f"/api/v1/deployments/{deployed.pk}/").status_code == 404
