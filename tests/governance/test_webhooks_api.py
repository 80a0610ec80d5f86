"""Webhook endpoints over REST (governance/webhooks_api.py) and the one save both it and the
admin's form use (governance/webhook_endpoints.py): platform admins only, the secret written
and never read back, every change an audit event, a refused save writes nothing."""

import pytest

from governance.models import AuditEvent, WebhookDelivery, WebhookEndpoint
from governance.webhooks import webhooks_send
from tests.conftest import last_audit, token_client

pytestmark = pytest.mark.django_db
WEBHOOKS = "/api/v1/webhooks/"
NEW = {"name": "Ticketing", "url": "https://tickets.example.com/hooks/warden", "secret": "s3cret", "events": ["*"]}


def test_a_platform_admin_creates_reads_and_changes_an_endpoint(platform_admin):
    api = token_client(platform_admin, "webhooks")

    created = api.post(WEBHOOKS, NEW, format="json")
    assert created.status_code == 201, created.content
    assert "secret" not in created.json()
    endpoint = WebhookEndpoint.objects.get(pk=created.json()["id"])
    assert (endpoint.secret, last_audit(endpoint).action) == ("s3cret", "webhook.create")
    assert [row["name"] for row in api.get(WEBHOOKS).json()["results"]] == ["Ticketing"]

    renamed = api.patch(f"{WEBHOOKS}{endpoint.pk}/", {"name": "Jira", "secret": ""}, format="json")
    assert renamed.status_code == 200, renamed.content
    endpoint.refresh_from_db()
    assert (endpoint.name, endpoint.secret) == ("Jira", "s3cret")  # an empty secret keeps it
    audit = last_audit(endpoint)
    assert (audit.data["changed"], audit.data["secret_changed"], "via_token" in audit.data) == (["name"], False, True)

    assert api.delete(f"{WEBHOOKS}{endpoint.pk}/").status_code == 403  # disabled, not deleted, as in the admin
    assert WebhookEndpoint.objects.filter(pk=endpoint.pk).exists()


def test_only_a_superuser_deletes_an_endpoint_and_the_deletion_is_audited(django_user_model):
    root = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    endpoint = WebhookEndpoint.objects.create(name="Chat", url="https://chat.example.com/", secret="x", events=[])

    assert token_client(root, "webhooks").delete(f"{WEBHOOKS}{endpoint.pk}/").status_code == 204

    assert not WebhookEndpoint.objects.exists()
    assert AuditEvent.objects.filter(action="webhook.delete", object_id=str(endpoint.pk)).exists()


def test_re_enabling_a_disabled_endpoint_starts_a_fresh_count_and_lists_its_deliveries(platform_admin):
    endpoint = WebhookEndpoint.objects.create(
        name="Chat", url="https://chat.example.com/", secret="x", events=["*"], active=False,
        consecutive_failures=5, disabled_reason="HTTP 500 five times",
    )  # fmt: skip
    WebhookDelivery.objects.create(
        endpoint=endpoint, event="version.approve", payload={}, next_attempt_at="2026-12-01T00:00Z"
    )
    api = token_client(platform_admin, "webhooks")

    answer = api.patch(f"{WEBHOOKS}{endpoint.pk}/", {"active": True}, format="json").json()

    assert (answer["active"], answer["consecutive_failures"], answer["disabled_reason"]) == (True, 0, "")
    deliveries = api.get(f"{WEBHOOKS}{endpoint.pk}/deliveries/").json()["results"]
    # newest first: its own re-enabling, which it subscribes to ("*"), then the older one
    assert [(d["event"], d["log"]) for d in deliveries] == [("webhook.change", []), ("version.approve", [])]


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"secret": ""}, "secret_required"),
        ({"url": "ftp://files.example.com/in"}, "invalid"),
        ({"url": "not a url"}, "invalid"),
        ({"events": "version.approve"}, "invalid"),
        ({"events": [""]}, "invalid"),
    ],
)
def test_a_wrong_endpoint_is_refused_and_writes_nothing(platform_admin, change, code):
    answer = token_client(platform_admin, "webhooks").post(WEBHOOKS, NEW | change, format="json")

    assert answer.status_code == 400, answer.content
    assert answer.json()["code"] == code
    assert not WebhookEndpoint.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="webhook.").exists()


def test_only_platform_admins_manage_webhooks(security, board, author):
    for user in (security, board, author):
        api = token_client(user, "webhooks")
        assert api.get(WEBHOOKS).status_code == 403
        assert api.post(WEBHOOKS, NEW, format="json").status_code == 403
    assert not WebhookEndpoint.objects.exists()


def test_the_admin_form_saves_through_the_same_service(client, platform_admin):
    endpoint = WebhookEndpoint.objects.create(name="Chat", url="https://chat.example.com/", secret="kept", events=["*"])
    client.force_login(platform_admin)

    response = client.post(
        f"/admin/governance/webhookendpoint/{endpoint.pk}/change/",
        {"name": "Chat ops", "url": "https://chat.example.com/", "secret": "", "events": '["*"]', "active": "on"},
    )

    assert response.status_code == 302, response.content[:500]
    endpoint.refresh_from_db()
    assert (endpoint.name, endpoint.secret, last_audit(endpoint).action) == ("Chat ops", "kept", "webhook.change")


def test_the_admin_form_refuses_a_url_that_is_not_http(client, platform_admin):
    client.force_login(platform_admin)

    response = client.post(
        "/admin/governance/webhookendpoint/add/",
        {"name": "Files", "url": "ftp://files.example.com/in", "secret": "x", "events": '["*"]', "active": "on"},
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["url"] == ["Enter an https:// (or http://) URL."]
    assert not WebhookEndpoint.objects.exists()


def test_an_endpoint_saved_before_the_validator_with_a_file_url_is_never_opened(platform_admin, tmp_path):
    secret_file = tmp_path / "secret.txt"
    secret_file.write_text("do not read")
    endpoint = WebhookEndpoint.objects.create(name="Old", url=f"file://{secret_file}", secret="x", events=["*"])
    WebhookDelivery.objects.create(
        endpoint=endpoint, event="version.approve", payload={}, next_attempt_at="2026-01-01T00:00Z"
    )

    webhooks_send()

    (attempt,) = WebhookDelivery.objects.get(endpoint=endpoint).log.all()
    assert (attempt.status_code, attempt.error) == (None, "not an http(s) URL: not posted")
