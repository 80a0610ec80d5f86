"""Writes on vendors, plugins and versions: the author's side and what follows approval."""

from django.contrib.auth.models import Group
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django_q.tasks import async_task
from guardian.shortcuts import assign_perm

from compliance.rereviews import re_review_schedule
from governance import roles
from governance.errors import PermissionRefused, ValidationFailed
from governance.permissions import is_org_member, require_perm
from governance.risk.services import deploy_check
from governance.transitions import apply_transition, require_reason, save_with_audit
from reviews import pipeline

from .intake import inspect_artifact
from .models import Organisation, Plugin, PluginVersion, VersionStatus, artifact_path


def organisation_create(*, name: str, slug: str, actor, contact_email: str = "") -> Organisation:
    require_perm(actor, "submissions.add_organisation", detail=f"{actor} may not create organisations.")
    with transaction.atomic():
        taken = Organisation.objects.filter(Q(name__iexact=name) | Q(slug=slug)).first()
        if taken or Group.objects.filter(name=f"org:{slug}").exists():
            raise ValidationFailed(
                f"An organisation named {name!r} or with slug {slug!r} already exists.",
                code="duplicate_organisation",
                errors=[{"field": "slug", "code": "duplicate_organisation", "message": "Already taken."}],
            )
        group = Group.objects.create(name=f"org:{slug}")
        organisation = Organisation(name=name, slug=slug, group=group, contact_email=contact_email)
        save_with_audit(organisation, actor=actor, action="organisation.create")
        assign_perm("submissions.view_organisation", group, organisation)
    return organisation


def organisation_add_member(*, organisation: Organisation, user, actor) -> None:
    """Make ``user`` an author of ``organisation``: staff access, the authors' role, its group."""
    require_perm(actor, "submissions.change_organisation", detail=f"{actor} may not change organisations.")
    with transaction.atomic():
        if not user.is_staff:
            user.is_staff = True
            user.save(update_fields=["is_staff"])
        user.groups.add(organisation.group, Group.objects.get(name=roles.AUTHORS))
        save_with_audit(organisation, actor=actor, action="organisation.add_member", data={"user": user.get_username()})


def plugin_create(*, organisation: Organisation, name: str, category: str, actor, description: str = "") -> Plugin:
    if not is_org_member(actor, organisation):
        raise PermissionRefused(f"{actor} is not a member of {organisation}.")
    with transaction.atomic():
        if Plugin.objects.filter(organisation=organisation, name=name).exists():
            raise ValidationFailed(
                f"{organisation} already has a plugin named {name!r}.",
                code="duplicate_plugin",
                errors=[{"field": "name", "code": "duplicate_plugin", "message": "Already taken."}],
            )
        plugin = Plugin(organisation=organisation, name=name, category=category, description=description)
        save_with_audit(plugin, actor=actor, action="plugin.create")
        for perm in ("submissions.view_plugin", "submissions.submit_plugin"):
            assign_perm(perm, organisation.group, plugin)
    return plugin


def version_create(*, plugin: Plugin, artifact: UploadedFile, actor) -> PluginVersion:
    """Store an uploaded archive as a draft version of ``plugin``.

    The archive is read before anything is stored; if the row cannot be written, the
    stored file is removed again, so a refused upload leaves nothing behind.
    """
    require_perm(actor, "submissions.submit_plugin", plugin, detail=f"{actor} may not submit versions of {plugin}.")
    filename = artifact.name or "artifact"
    facts = inspect_artifact(artifact, filename)
    if facts.name != plugin.name:
        raise ValidationFailed(
            f"The manifest names plugin {facts.name!r}, not {plugin.name!r}.",
            code="plugin_mismatch",
            errors=[{"field": "plugin.name", "code": "plugin_mismatch", "message": f"Expected {plugin.name!r}."}],
        )
    category = facts.manifest["plugin"]["category"]
    if category != plugin.category:  # budgets, checklists and auto-approval go by the plugin's category
        raise ValidationFailed(
            f"The manifest's category is {category!r}, but {plugin.name} is registered as {plugin.category!r}.",
            code="category_mismatch",
            errors=[
                {"field": "plugin.category", "code": "category_mismatch", "message": f"Expected {plugin.category!r}."}
            ],
        )
    stored = default_storage.save(artifact_path(None, filename), artifact)
    try:
        with transaction.atomic():
            _refuse_duplicate(plugin, facts.version)
            version = PluginVersion(
                plugin=plugin,
                version=facts.version,
                artifact=stored,
                artifact_name=filename[:255],
                sha256=facts.sha256,
                size=facts.size,
                manifest=facts.manifest,
                created_by=actor,
            )
            save_with_audit(version, actor=actor, action="version.create", data={"sha256": facts.sha256})
    except IntegrityError:
        default_storage.delete(stored)
        raise _duplicate(plugin, facts.version) from None
    except BaseException:
        default_storage.delete(stored)
        raise
    return version


def version_submit(*, version: PluginVersion, actor) -> PluginVersion:
    with transaction.atomic():
        version = _lock_as_author(version, actor)
        apply_transition(
            version,
            "submit",
            actor=actor,
            action="version.submit",
            changes={"submitted_by": actor, "submitted_at": timezone.now()},
        )
        _start_review_after_commit(version)
    return version


def version_resubmit(*, version: PluginVersion, actor, reason: str) -> PluginVersion:
    """The author answers a request for changes; the pipeline starts a new round."""
    reason = require_reason(reason, action="resubmit")
    with transaction.atomic():
        version = _lock_as_author(version, actor)
        apply_transition(
            version,
            "resubmit",
            actor=actor,
            action="version.resubmit",
            reason=reason,
            changes={"submitted_by": actor, "submitted_at": timezone.now()},
        )
        _start_review_after_commit(version)
    return version


def version_withdraw(*, version: PluginVersion, actor, reason: str) -> PluginVersion:
    reason = require_reason(reason, action="withdraw")
    with transaction.atomic():
        version = _lock_as_author(version, actor)
        apply_transition(version, "withdraw", actor=actor, action="version.withdraw", reason=reason)
        pipeline.close_round(version=version, reason="The author withdrew the version.")
    return version


def version_deploy(*, version: PluginVersion, actor, reason: str = "") -> PluginVersion:
    """Mark an approved version as running; the plugin's previously deployed version is superseded.
    Its policies are evaluated again first: an enforce-mode violation (an exemption that expired
    since the approval, say) refuses the deployment with the policy's message."""
    with transaction.atomic():
        rows = _lock_plugin_versions(version, also=Q(status=VersionStatus.DEPLOYED))
        version = rows.pop(version.pk)
        require_perm(actor, "submissions.deploy_pluginversion", detail=f"{actor} may not deploy versions.")
        if version.status == VersionStatus.APPROVED:  # else the transition refuses it below
            deploy_check(version=version, actor=actor)
        apply_transition(version, "deploy", actor=actor, action="version.deploy", reason=reason)
        re_review_schedule(version=version)
        for previous in rows.values():
            apply_transition(
                previous, "supersede", actor=None, action="version.supersede", reason=f"{version} was deployed."
            )
    return version


def version_roll_back(*, version: PluginVersion, actor, reason: str) -> PluginVersion:
    """Take a deployed version out; the version it superseded most recently runs again."""
    reason = require_reason(reason, action="roll back")
    with transaction.atomic():
        rows = _lock_plugin_versions(version, also=Q(status=VersionStatus.SUPERSEDED))
        version = rows.pop(version.pk)
        require_perm(actor, "submissions.deploy_pluginversion", detail=f"{actor} may not roll back versions.")
        apply_transition(version, "roll_back", actor=actor, action="version.roll_back", reason=reason)
        if rows:
            previous = rows[max(rows)]
            apply_transition(
                previous, "reinstate", actor=actor, action="version.reinstate", reason=f"{version} was rolled back."
            )
    return version


def version_revoke(*, version: PluginVersion, actor, reason: str) -> PluginVersion:
    reason = require_reason(reason, action="revoke")
    with transaction.atomic():
        version = _lock_with_perm(version, actor, "submissions.decide_pluginversion", "revoke approvals")
        apply_transition(
            version,
            "revoke",
            actor=actor,
            action="version.revoke",
            reason=reason,
            changes={"decided_at": timezone.now(), "decision_reason": reason},
        )
    return version


# -- helpers ---------------------------------------------------------------------------


def _lock_as_author(version: PluginVersion, actor) -> PluginVersion:
    version = PluginVersion.objects.select_for_update(of=("self",)).select_related("plugin").get(pk=version.pk)
    require_perm(
        actor, "submissions.submit_plugin", version.plugin, detail=f"{actor} is not an author of {version.plugin}."
    )
    return version


def _lock_plugin_versions(version: PluginVersion, *, also: Q) -> dict[int, PluginVersion]:
    """Lock ``version`` and its plugin's versions matching ``also``, in primary-key order,
    so that concurrent deploys, roll-backs and revocations queue instead of deadlocking."""
    rows = (
        PluginVersion.objects.select_for_update()
        .filter(Q(pk=version.pk) | (Q(plugin_id=version.plugin_id) & also))
        .order_by("pk")
    )
    return {row.pk: row for row in rows}


def _lock_with_perm(version: PluginVersion, actor, perm: str, what: str) -> PluginVersion:
    version = PluginVersion.objects.select_for_update().get(pk=version.pk)
    require_perm(actor, perm, detail=f"{actor} may not {what}.")
    return version


def _start_review_after_commit(version: PluginVersion) -> None:
    version_id = version.pk
    transaction.on_commit(
        lambda: async_task("reviews.tasks.start_review", version_id, task_name=f"start-review-{version_id}")
    )


def _refuse_duplicate(plugin: Plugin, number: str) -> None:
    if PluginVersion.objects.filter(plugin=plugin, version=number).exists():
        raise _duplicate(plugin, number)


def _duplicate(plugin: Plugin, number: str) -> ValidationFailed:
    return ValidationFailed(
        f"{plugin} {number} was already submitted.",
        code="duplicate_version",
        errors=[{"field": "plugin.version", "code": "duplicate_version", "message": "This version number is taken."}],
    )
