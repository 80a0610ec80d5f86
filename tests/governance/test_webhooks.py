"""Webhooks against a real HTTP server on 127.0.0.1: signed, logged, retried, disabled."""

import hashlib
import hmac
import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import time_machine
from django.utils import timezone

from governance.models import Notification, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from governance.webhooks import webhooks_send
from submissions import services as sub

pytestmark = pytest.mark.django_db
SECRET = "s3cret-for-tests"


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append((dict(self.headers), body))
        status = self.server.statuses.pop(0) if self.server.statuses else 200
        self.send_response(status)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    server.received, server.statuses = [], []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def endpoint(receiver):
    host, port = receiver.server_address
    return WebhookEndpoint.objects.create(
        name="tickets", url=f"http://{host}:{port}/hook", secret=SECRET, events=["version.submit", "version.approve"]
    )


def test_a_subscribed_event_is_delivered_signed(draft, author, pipeline, endpoint, receiver):
    sub.version_submit(version=draft, actor=author)
    delivery = WebhookDelivery.objects.get()
    assert delivery.event == "version.submit"
    assert webhooks_send() == 1
    headers, body = receiver.received[0]
    expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["X-Warden-Signature"], expected)
    assert headers["X-Warden-Event"] == "version.submit"
    payload = json.loads(body)
    assert (payload["version"], payload["event"], payload["actor"], payload["to_state"]) == (
        1,
        "version.submit",
        "acme-author",
        "submitted",
    )
    assert payload["object"] == {"type": "submissions.pluginversion", "id": str(draft.pk), "repr": str(draft)}
    assert WebhookAttempt.objects.get().status_code == 200
    assert webhooks_send() == 0  # delivered: never again
    assert len(receiver.received) == 1


def test_events_nobody_subscribed_to_are_not_queued(draft, author, endpoint):
    sub.version_withdraw(version=draft, actor=author, reason="Not ready.")
    assert not WebhookDelivery.objects.exists()


def test_a_failing_endpoint_is_retried_with_backoff_and_delivered_once(draft, author, pipeline, endpoint, receiver):
    receiver.statuses = [500, 503]
    sub.version_submit(version=draft, actor=author)
    assert webhooks_send() == 0
    assert webhooks_send() == 0  # backing off: not hammered
    assert len(receiver.received) == 1
    with time_machine.travel(timezone.now() + timedelta(minutes=3)):
        assert webhooks_send() == 0  # 503
    with time_machine.travel(timezone.now() + timedelta(minutes=10)):
        assert webhooks_send() == 1
        assert webhooks_send() == 0
    assert [a.status_code for a in WebhookAttempt.objects.all()] == [500, 503, 200]
    assert len(receiver.received) == 3
    assert len({body for _headers, body in receiver.received}) == 1  # the same payload each time
    endpoint.refresh_from_db()
    assert endpoint.consecutive_failures == 0


def test_an_endpoint_that_keeps_failing_is_disabled_and_admins_told(
    draft, author, pipeline, endpoint, receiver, platform_admin, settings
):
    settings.WARDEN_WEBHOOK_DISABLE_AFTER = 2
    receiver.statuses = [500] * 10
    sub.version_submit(version=draft, actor=author)
    webhooks_send()
    with time_machine.travel(timezone.now() + timedelta(minutes=3)):
        webhooks_send()
    endpoint.refresh_from_db()
    assert (endpoint.active, endpoint.consecutive_failures) == (False, 2)
    assert "Disabled after 2 failures" in endpoint.disabled_reason
    assert WebhookDelivery.objects.get().abandoned
    assert Notification.objects.get(event="webhook.disabled").recipient == platform_admin
    with time_machine.travel(timezone.now() + timedelta(hours=1)):
        assert webhooks_send() == 0
    assert len(receiver.received) == 2


def test_an_unreachable_endpoint_is_logged_not_crashed(draft, author, pipeline):
    WebhookEndpoint.objects.create(name="gone", url="http://127.0.0.1:9/hook", secret=SECRET, events=["*"])
    sub.version_submit(version=draft, actor=author)
    assert webhooks_send() == 0
    attempt = WebhookAttempt.objects.get()
    assert attempt.status_code is None and attempt.error


def test_endpoints_are_configured_in_the_admin_without_showing_the_secret(client, platform_admin, endpoint):
    from django.urls import reverse

    client.force_login(platform_admin)
    page = client.get(reverse("admin:governance_webhookendpoint_change", args=[endpoint.pk])).content.decode()
    assert SECRET not in page
    endpoint.active, endpoint.consecutive_failures = False, 7
    endpoint.save()
    form = {"name": "tickets", "url": endpoint.url, "secret": "", "events": '["*"]', "active": "on"}
    assert client.post(reverse("admin:governance_webhookendpoint_change", args=[endpoint.pk]), form).status_code == 302
    endpoint.refresh_from_db()
    assert (endpoint.secret, endpoint.active, endpoint.consecutive_failures, endpoint.events) == (
        SECRET,
        True,
        0,
        ["*"],
    )
    assert client.get(reverse("admin:governance_webhookdelivery_changelist")).status_code == 200


def test_the_secret_stays_out_of_the_history_pages(client, platform_admin, endpoint):
    from django.urls import reverse

    endpoint.secret = "rotated-secret"
    endpoint.save()
    client.force_login(platform_admin)
    page = client.get(reverse("admin:governance_webhookendpoint_history", args=[endpoint.pk])).content.decode()
    assert SECRET not in page and "rotated-secret" not in page


def test_a_slow_sender_does_not_finish_a_row_another_sender_reclaimed(draft, author, pipeline, endpoint, receiver):
    from governance import webhooks

    sub.version_submit(version=draft, actor=author)
    delivery = WebhookDelivery.objects.get()
    stale_token = timezone.now() - timedelta(minutes=1)  # the first sender's claim, long expired
    WebhookDelivery.objects.filter(pk=delivery.pk).update(claimed_until=timezone.now() + timedelta(minutes=5))
    webhooks._failed(delivery, "timed out", stale_token)  # the slow first sender reports back late
    delivery.refresh_from_db()
    assert delivery.attempts == 0 and delivery.claimed_until is not None  # the live claim is untouched
