"""django-q2 tasks of the decisions: thin wrappers the schedules and services call."""

from submissions.models import PluginVersion

from . import tuf_repo
from .approval import version_auto_approve
from .exemptions import exemptions_expire, exemptions_warn
from .retro_hunt import retro_flags_escalate
from .retro_hunt import retro_hunt as hunt


def expire_exemptions() -> int:
    """Warn the owners of exemptions about to expire, then expire what is due."""
    exemptions_warn()
    return exemptions_expire()


def auto_approve(version_id: int) -> PluginVersion | None:
    return version_auto_approve(version=PluginVersion.objects.get(pk=version_id))


def tuf_publish(version_id: int | None = None) -> dict[str, int]:
    """Publish the TUF metadata for what hosts may run now (queued after every feed change, with
    the version that changed) and re-sign what is due: scheduled every few minutes without a
    version, it re-reads every version and keeps the timestamp from expiring."""
    return tuf_repo.tuf_publish(version_ids=None if version_id is None else [version_id]).signed


def retro_hunt(trigger: str, version_ids: list[int] | None = None) -> int:
    """Evaluate the standing versions again (queued when the policies change): the number of
    flags opened."""
    return len(hunt(trigger=trigger, version_ids=version_ids).opened)


def escalate_retro_flags() -> int:
    """Daily: tell the security group, the board and the platform admins of overdue flags."""
    return retro_flags_escalate()


def tuf_root_check() -> bool:
    """Daily: remind the platform admins in the root's last 30 days to renew it."""
    return tuf_repo.tuf_root_expiry_warn()
