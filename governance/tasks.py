"""django-q2 tasks of the platform: thin wrappers the schedules call."""

from .notifications import notifications_send
from .webhooks import webhooks_send


def send_notifications() -> int:
    return notifications_send()


def send_webhooks() -> int:
    return webhooks_send()
