"""django-q2 tasks of the decisions: thin wrappers the schedules and services call."""

from submissions.models import PluginVersion

from .approval import version_auto_approve
from .exemptions import exemptions_expire, exemptions_warn


def expire_exemptions() -> int:
    """Warn the owners of exemptions about to expire, then expire what is due."""
    exemptions_warn()
    return exemptions_expire()


def auto_approve(version_id: int) -> PluginVersion | None:
    return version_auto_approve(version=PluginVersion.objects.get(pk=version_id))
