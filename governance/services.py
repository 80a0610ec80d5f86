"""Writes on platform configuration."""

from django.contrib.auth.models import Group, User
from django.db import transaction

from . import roles
from .models import HostPlatform, Stage, StageKind
from .permissions import require_perm
from .transitions import save_with_audit

ELIGIBILITY_CHECKS = [
    "eligibility.manifest",
    "eligibility.host_api",
    "eligibility.licence",
    "eligibility.docs",
    "eligibility.compile",
    "eligibility.pinned",
]
# Stages whose reviewers need a current qualification of the stage's kind.
QUALIFIED_KINDS = {StageKind.SECURITY, StageKind.PERFORMANCE, StageKind.COMPLIANCE}
SECURITY_CHECKS = ["security.bandit", "security.guarddog", "security.dependencies", "security.behaviour"]
PERFORMANCE_CHECKS = ["performance.harness"]
# key, name, kind, order, owner role, SLA hours, checks, passes on its own
DEFAULT_PIPELINE = [
    ("eligibility", "Eligibility", StageKind.ELIGIBILITY, 1, roles.PLATFORM_ADMINS, 24, ELIGIBILITY_CHECKS, True),
    ("security", "Security review", StageKind.SECURITY, 2, roles.SECURITY_REVIEWERS, 72, SECURITY_CHECKS, False),
    (
        "performance",
        "Performance assessment",
        StageKind.PERFORMANCE,
        2,
        roles.PERFORMANCE_REVIEWERS,
        72,
        PERFORMANCE_CHECKS,
        False,
    ),
    ("compliance", "Compliance validation", StageKind.COMPLIANCE, 2, roles.COMPLIANCE_OFFICERS, 96, [], False),
    ("decision", "Approval decision", StageKind.DECISION, 3, roles.APPROVAL_BOARD, 48, [], False),
]


def stage_save(*, stage: Stage, actor: User, changed: list[str]) -> Stage:
    """Create or reconfigure a stage. Changes apply to rounds opened from now on: open
    reviews keep the owner group and blocking setting they started with."""
    adding = stage._state.adding
    require_perm(
        actor,
        "governance.add_stage" if adding else "governance.change_stage",
        detail=f"{actor} may not configure stages.",
    )
    # not durable: the admin's add/change form calls it inside the transaction Django opens
    with transaction.atomic():
        save_with_audit(
            stage,
            actor=actor,
            action="stage.create" if adding else "stage.configure",
            data={"changed": sorted(changed)},
        )
    return stage


def pipeline_install_defaults(*, actor: User | None = None) -> list[Stage]:
    """Create the default five stages that do not exist yet (by key); leave the rest alone."""
    created = []
    with transaction.atomic(durable=True):
        escalation = Group.objects.get(name=roles.PLATFORM_ADMINS)
        for key, name, kind, order, owner, sla_hours, checks, auto_pass in DEFAULT_PIPELINE:
            if Stage.objects.filter(key=key).exists():
                continue
            stage = Stage(
                key=key,
                name=name,
                kind=kind,
                order=order,
                owner_group=Group.objects.get(name=owner),
                escalation_group=escalation,
                sla_hours=sla_hours,
                blocking=True,
                checks=checks,
                auto_pass=auto_pass,
                required_qualification=kind if kind in QUALIFIED_KINDS else "",
            )
            save_with_audit(stage, actor=actor, action="stage.create")
            created.append(stage)
    return created


def host_platform_save(*, host: HostPlatform, actor: User, changed: list[str]) -> HostPlatform:
    """Register or change a host platform. Making one the default moves the default to it:
    the previous default is unset in the same transaction, so eligibility checks and
    performance budgets never find no default (or two) in between."""
    adding = host._state.adding
    require_perm(
        actor,
        "governance.add_hostplatform" if adding else "governance.change_hostplatform",
        detail=f"{actor} may not configure host platforms.",
    )
    # not durable: the admin's change form and changelist call it inside the transaction Django opens
    with transaction.atomic():
        if host.is_default:
            previous = HostPlatform.objects.select_for_update().filter(is_default=True).exclude(pk=host.pk)
            for other in previous.order_by("pk"):
                other.is_default = False
                save_with_audit(
                    other,
                    actor=actor,
                    action="host_platform.change",
                    data={"changed": ["is_default"], "default_moved_to": host.name},
                )
        save_with_audit(
            host,
            actor=actor,
            action="host_platform.create" if adding else "host_platform.change",
            data={"changed": sorted(changed), "is_default": host.is_default},
        )
    return host
