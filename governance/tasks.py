"""django-q2 tasks of the platform: thin wrappers the schedules call."""

from .notifications import notifications_send
from .webhooks import webhooks_send


def send_notifications() -> int:
    return notifications_send()


def send_webhooks() -> int:
    return webhooks_send()


def open_re_reviews() -> int:
    from compliance.rereviews import re_reviews_open_due

    return re_reviews_open_due()


def expire_exemptions() -> int:
    """Warn the owners of exemptions about to expire, then expire what is due."""
    from .risk.exemptions import exemptions_expire, exemptions_warn

    exemptions_warn()
    return exemptions_expire()


def auto_approve(version_id: int):
    from reviews.services import version_auto_approve
    from submissions.models import PluginVersion

    return version_auto_approve(version=PluginVersion.objects.get(pk=version_id))
