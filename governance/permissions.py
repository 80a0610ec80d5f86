"""Permission checks shared by services. Each raises PermissionRefused with a reason."""

from typing import Any

from .errors import PermissionRefused


def require_perm(user: Any, perm: str, obj=None, *, detail: str) -> None:
    if user is None or not user.is_active or not user.has_perm(perm, obj):
        raise PermissionRefused(detail)


def is_org_member(user: Any, organisation) -> bool:
    if user is None or not user.pk:
        return False
    return user.groups.filter(pk=organisation.group_id).exists()


def refuse_own_submission(user: Any, version) -> None:
    """Separation of duties: nobody from the submitting organisation reviews its version."""
    if version.submitted_by_id == user.pk or is_org_member(user, version.plugin.organisation):
        raise PermissionRefused(
            f"{user} belongs to the organisation that submitted {version}; someone else must review it."
        )
