"""Integration tokens (submissions/tokens.py): hashed, scoped, bound to an organisation,
expiring, revocable, rate-limited, and named in the audit log."""

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from governance.errors import PermissionRefused, ValidationFailed
from governance.models import AuditEvent
from submissions.models import IntegrationToken
from submissions.samples import plugin_archive
from submissions.tokens import token_create, token_revoke
from tests.conftest import token_client, token_key

pytestmark = pytest.mark.django_db


def bearer(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def test_the_key_is_shown_once_and_only_its_hash_is_kept(platform_admin, author):
    token, key = token_create(actor=platform_admin, name="acme CI", owner=author, scopes=["submit", "report"])
    prefix, _, _ = key.partition(".")
    assert token.prefix == prefix and len(key) == 8 + 1 + 32
    assert key not in token.hashed_key and token.hashed_key == "sha512$$" + hashlib.sha512(key.encode()).hexdigest()
    event = AuditEvent.objects.get(action="token.created")
    assert key not in str(event.data) and event.data["scopes"] == ["report", "submit"]
    assert bearer(key).get("/api/v1/versions/").status_code == 200  # submit reads the versions it submits


def test_an_author_creates_tokens_for_their_own_organisation_only(author, acme, globex, other_author):
    token, _ = token_create(actor=author, name="CI", organisation=acme, scopes=["submit"])
    assert token.owner == author
    for organisation in (None, globex):
        with pytest.raises(ValidationFailed) as refused:
            token_create(actor=author, name="CI", organisation=organisation, scopes=["submit"])
        assert refused.value.errors[0]["field"] == "organisation"
    with pytest.raises(ValidationFailed):
        token_create(actor=author, name="CI", owner=other_author, organisation=acme, scopes=["submit"])
    with pytest.raises(ValidationFailed):
        token_create(actor=author, name="CI", organisation=acme, scopes=["everything"])
    assert IntegrationToken.objects.count() == 1


def test_each_endpoint_takes_only_the_scopes_it_names(author, plugin, draft):
    report_only = token_client(author, "report")
    upload = {"artifact": plugin_archive(plugin.name, "9.9.9"), "submit": "false"}
    refused = report_only.post(f"/api/v1/plugins/{plugin.pk}/versions/", upload, format="multipart")
    assert refused.status_code == 403
    assert refused.json() == {
        "code": "permission_denied",
        "detail": "This token's scopes (report) do not include 'submit'.",
        "errors": [],
    }
    assert report_only.post(f"/api/v1/versions/{draft.pk}/submit/").status_code == 403
    assert token_client(author, "feed").get("/api/v1/versions/").status_code == 403
    assert token_client(author, "read").get("/api/v1/versions/").status_code == 200

    submitter = token_client(author, "submit")
    upload["artifact"] = plugin_archive(plugin.name, "9.9.9")
    created = submitter.post(f"/api/v1/plugins/{plugin.pk}/versions/", upload, format="multipart")
    assert created.status_code == 201, created.json()
    assert created.json()["status"] == "draft"


def test_a_token_bound_to_an_organisation_sees_only_its_plugins(platform_admin, acme, globex, draft, other_author):
    theirs = token_create(actor=platform_admin, name="globex CI", organisation=globex, scopes=["read"])[1]
    ours = token_create(actor=platform_admin, name="acme CI", organisation=acme, scopes=["read"])[1]
    unbound = token_create(actor=platform_admin, name="ops", scopes=["read"])[1]
    assert bearer(theirs).get(f"/api/v1/versions/{draft.pk}/").status_code == 404
    assert len(bearer(theirs).get("/api/v1/versions/").json()["results"]) == 0
    assert bearer(theirs).get(f"/api/v1/versions/{draft.pk}/gate/").status_code == 404
    assert bearer(ours).get(f"/api/v1/versions/{draft.pk}/").status_code == 200
    assert len(bearer(unbound).get("/api/v1/versions/").json()["results"]) == 1


def test_revoked_expired_and_unknown_tokens_are_401_with_the_challenge(platform_admin, author):
    token, key = token_create(actor=platform_admin, name="CI", owner=author, scopes=["read"])
    expired = token_key(author, "read", expiry_date=timezone.now() - timedelta(seconds=1))
    token_revoke(token=token, actor=platform_admin, reason="Leaked in a build log.")
    for bad in (key, expired, key[:-1] + ("x" if key[-1] != "x" else "y"), "nodot", "\u00e9t\u00e9.x"):
        answer = bearer(bad).get("/api/v1/versions/")
        assert (answer.status_code, answer["WWW-Authenticate"], answer.json()["code"]) == (
            401,
            "Token",
            "authentication_failed",
        ), bad
    assert AuditEvent.objects.filter(action="token.revoked", reason="Leaked in a build log.").count() == 1


def test_an_inactive_owners_token_is_401(author):
    client = token_client(author, "read")
    author.is_active = False
    author.save()
    assert client.get("/api/v1/versions/").status_code == 401


def test_authors_revoke_their_organisations_tokens_and_nobody_elses(platform_admin, author, other_author, acme):
    token, _ = token_create(actor=platform_admin, name="acme CI", organisation=acme, scopes=["submit"])
    with pytest.raises(PermissionRefused, match="may not revoke"):
        token_revoke(token=token, actor=other_author)
    assert token_revoke(token=token, actor=author).revoked


@time_machine.travel(datetime(2026, 12, 1, 12, 0, 10, tzinfo=UTC), tick=False)  # within one clock minute
def test_the_rate_limit_answers_429_with_retry_after(author, draft):
    client = token_client(author, "read", rate_per_minute=2)
    assert [client.get("/api/v1/versions/").status_code for _ in range(2)] == [200, 200]
    limited = client.get("/api/v1/versions/")
    assert limited.status_code == 429
    assert int(limited["Retry-After"]) == 50  # the rest of the minute
    assert limited.json()["code"] == "throttled"
    assert token_client(author, "read").get("/api/v1/versions/").status_code == 200  # each token its own


@time_machine.travel(datetime(2026, 12, 1, 12, 0, 10, tzinfo=UTC), tick=False)
def test_the_feeds_unchanged_poll_counts_against_the_rate_too(platform_admin):
    client = token_client(platform_admin, "feed", rate_per_minute=2)
    etag = client.get("/api/v1/feed/")["ETag"]
    assert client.get("/api/v1/feed/", HTTP_IF_NONE_MATCH=etag).status_code == 304
    limited = client.get("/api/v1/feed/", HTTP_IF_NONE_MATCH=etag)
    assert (limited.status_code, limited.has_header("Retry-After")) == (429, True)


def test_the_feed_refuses_a_token_without_the_feed_scope_even_for_a_feed_reader(platform_admin):
    client = token_client(platform_admin, "read")
    etag = token_client(platform_admin, "feed").get("/api/v1/feed/")["ETag"]
    for conditional in ({}, {"HTTP_IF_NONE_MATCH": etag}):
        assert client.get("/api/v1/feed/", **conditional).status_code == 403


def test_writes_with_a_token_name_it_in_the_audit_log(author, draft):
    token, key = token_create(actor=author, name="acme CI", organisation=draft.plugin.organisation, scopes=["submit"])
    assert bearer(key).post(f"/api/v1/versions/{draft.pk}/submit/").status_code == 200
    event = AuditEvent.objects.filter(object_id=str(draft.pk), action="version.submit").latest("seq")
    assert (event.actor, event.data["via_token"]) == (author, f"{token.prefix} (acme CI)")
    token_revoke(token=token, actor=author)  # after the request, outside it: no token named
    assert "via_token" not in AuditEvent.objects.get(action="token.revoked").data


def test_last_used_is_written_at_most_once_a_minute(author):
    key = token_key(author, "read")
    token = IntegrationToken.objects.get()
    assert token.last_used_at is None
    bearer(key).get("/api/v1/versions/")
    first = IntegrationToken.objects.get().last_used_at
    assert first is not None
    bearer(key).get("/api/v1/versions/")
    assert IntegrationToken.objects.get().last_used_at == first


def test_the_admin_shows_the_key_once_and_revokes(client, author, acme):
    client.force_login(author)
    add = reverse("admin:submissions_integrationtoken_add")
    form = client.get(add)
    assert form.status_code == 200
    assert list(form.context["adminform"].form.fields["organisation"].queryset) == [acme]
    created = client.post(
        add,
        {
            "name": "acme CI",
            "owner": author.pk,
            "organisation": acme.pk,
            "scopes": ["submit", "report"],
            "rate_per_minute": 60,
        },
    )
    token = IntegrationToken.objects.get()
    key = created.context["key"]
    assert created.status_code == 200 and key.startswith(token.prefix + ".") and key in created.content.decode()
    change = client.get(reverse("admin:submissions_integrationtoken_change", args=[token.pk]))
    assert key not in change.content.decode() and token.prefix in change.content.decode()
    act = reverse("admin:submissions_integrationtoken_act", args=[token.pk, "revoke"])
    assert client.post(act, {"reason": "rotated"}).status_code == 302
    assert IntegrationToken.objects.get().revoked
    assert bearer(key).get("/api/v1/versions/").status_code == 401


def test_the_admin_refuses_an_author_binding_a_token_elsewhere(client, author, globex):
    client.force_login(author)
    answer = client.post(
        reverse("admin:submissions_integrationtoken_add"),
        {"name": "x", "owner": author.pk, "organisation": globex.pk, "scopes": ["submit"], "rate_per_minute": 60},
    )
    assert answer.status_code == 200 and "organisation" in answer.context["adminform"].form.errors
    assert not IntegrationToken.objects.exists()


def test_the_command_prints_a_working_key_once(author, acme, django_user_model, capsys):
    from django.core.management import CommandError, call_command

    django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    call_command("create_token", author.username, "--scopes", "read", "--organisation", acme.slug)
    key = capsys.readouterr().out.strip()
    assert bearer(key).get("/api/v1/versions/").status_code == 200
    with pytest.raises(CommandError, match="Choose at least one"):
        call_command("create_token", author.username, "--scopes", "admin")


def test_no_key_reaches_the_logs(platform_admin, author, caplog):
    caplog.set_level("DEBUG")
    token, key = token_create(actor=platform_admin, name="CI", owner=author, scopes=["read"])
    bearer(key).get("/api/v1/versions/")
    bearer(key).post("/api/v1/advisories/", {})  # refused: no scope
    token_revoke(token=token, actor=platform_admin)
    bearer(key).get("/api/v1/versions/")  # refused: revoked
    secret = key.partition(".")[2]
    assert caplog.records and secret not in caplog.text
    assert all(secret not in str(event.data) for event in AuditEvent.objects.all())


def test_the_feed_reads_a_tokens_expiry_on_both_its_paths(platform_admin):
    current = token_client(platform_admin, "feed", expiry_date=timezone.now() + timedelta(hours=1))
    etag = current.get("/api/v1/feed/")["ETag"]
    assert current.get("/api/v1/feed/", HTTP_IF_NONE_MATCH=etag).status_code == 304
    expired = token_client(platform_admin, "feed", expiry_date=timezone.now() - timedelta(seconds=1))
    for conditional in ({}, {"HTTP_IF_NONE_MATCH": etag}):
        assert expired.get("/api/v1/feed/", **conditional).status_code == 401
