"""The outbox: written with the event, sent by the scheduled task, never lost, never twice."""

import pytest
import time_machine
from django.core import mail
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from governance.models import Notification, NotificationPreference
from governance.notifications import notifications_send, notify

pytestmark = pytest.mark.django_db


def queue(users, event="sla.reminder", subject="Review due soon"):
    with transaction.atomic():
        return notify(recipients=users, event=event, subject=subject, body="Please look.", url="/admin/")


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_notify_refuses_to_run_outside_a_transaction(security):
    with pytest.raises(RuntimeError, match="inside the transaction"):
        notify(recipients=[security], event="sla.reminder", subject="x")
    assert not Notification.objects.exists()


def test_rows_are_sent_once(security, performance):
    queue([security, performance, security])  # duplicates fold into one row per person
    assert Notification.objects.count() == 2
    assert notifications_send() == 2
    assert sorted(m.to[0] for m in mail.outbox) == ["performance@example.com", "security@example.com"]
    assert notifications_send() == 0
    assert len(mail.outbox) == 2


def test_a_failing_backend_loses_nothing_and_sends_nothing_twice(security, settings):
    queue([security])
    settings.EMAIL_BACKEND = "tests.governance.test_notifications.BrokenBackend"
    assert notifications_send() == 0
    row = Notification.objects.get()
    assert (row.sent_at, row.attempts) == (None, 1)
    assert "SMTP is down" in row.last_error
    assert notifications_send() == 0  # backing off: not retried at once
    assert Notification.objects.get().attempts == 1

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    with time_machine.travel(timezone.now() + timezone.timedelta(minutes=3)):
        assert notifications_send() == 1
        assert notifications_send() == 0
    assert len(mail.outbox) == 1
    assert Notification.objects.get().sent_at is not None


def test_a_row_claimed_by_another_sender_is_left_alone(security):
    queue([security])
    Notification.objects.update(claimed_until=timezone.now() + timezone.timedelta(minutes=5))
    assert notifications_send() == 0 and not mail.outbox
    with time_machine.travel(timezone.now() + timezone.timedelta(minutes=6)):  # that sender died
        assert notifications_send() == 1


def test_preferences_are_honoured(security):
    NotificationPreference.objects.create(user=security, event="sla.reminder", email=False, in_admin=True)
    queue([security])
    row = Notification.objects.get()
    assert row.sent_at is not None and row.read_at is None  # nothing to e-mail, shown in the admin
    assert notifications_send() == 0
    NotificationPreference.objects.filter(user=security).update(in_admin=False)
    assert queue([security]) == []


def test_users_see_only_their_own_notifications(client, security, performance):
    queue([security], subject="For security")
    queue([performance], subject="For performance")
    client.force_login(security)
    page = client.get(reverse("admin:governance_notification_changelist"))
    assert [n.subject for n in page.context["cl"].result_list] == ["For security"]
    theirs = Notification.objects.get(recipient=performance)
    assert client.get(reverse("admin:governance_notification_change", args=[theirs.pk])).status_code == 404
    mine = Notification.objects.get(recipient=security)
    response = client.post(
        reverse("admin:governance_notification_changelist"),
        {"action": "mark_read", "_selected_action": [mine.pk, theirs.pk]},
        follow=True,
    )
    assert "1 marked as read" in response.content.decode()
    assert Notification.objects.get(recipient=performance).read_at is None


def test_a_duplicate_preference_is_a_form_error(client, security):
    client.force_login(security)
    url = reverse("admin:governance_notificationpreference_add")
    assert client.post(url, {"event": "sla.reminder", "email": "on"}).status_code == 302
    response = client.post(url, {"event": "sla.reminder"})
    assert response.status_code == 200 and "already have a preference" in response.content.decode()


class BrokenBackend:
    def __init__(self, *args, **kwargs):
        pass

    def send_messages(self, messages):
        raise ConnectionRefusedError("SMTP is down")
