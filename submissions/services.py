"""Writes on vendors, plugins and versions: the author's side and what follows approval."""

from collections.abc import Mapping

from django.contrib.auth.models import Group, User
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django_fsm import can_proceed
from django_q.tasks import async_task
from guardian.shortcuts import assign_perm

from governance import hooks, roles
from governance.errors import PermissionRefused, TransitionRefused, ValidationFailed
from governance.ids import is_id
from governance.permissions import is_org_member, require_perm
from governance.transitions import apply_transition, require_reason, save_with_audit

from .artifact_files import FileIndex, index_archive
from .intake import ArtifactFacts, inspect_artifact
from .models import Organisation, Plugin, PluginVersion, VersionRevision, artifact_path


def organisation_create(*, name: str, slug: str, actor: User, contact_email: str = "") -> Organisation:
    require_perm(actor, "submissions.add_organisation", detail=f"{actor} may not create organisations.")
    # not durable: the admin's add/change form calls it inside the transaction Django opens
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


def organisation_add_member(*, organisation: Organisation, user: User, actor: User) -> None:
    """Make ``user`` an author of ``organisation``: staff access, the authors' role, its group."""
    require_perm(actor, "submissions.change_organisation", detail=f"{actor} may not change organisations.")
    with transaction.atomic(durable=True):
        if not user.is_staff:
            user.is_staff = True
            user.save(update_fields=["is_staff"])
        user.groups.add(organisation.group, Group.objects.get(name=roles.AUTHORS))
        save_with_audit(organisation, actor=actor, action="organisation.add_member", data={"user": user.get_username()})


def plugin_create(
    *, organisation: Organisation, name: str, category: str, actor: User, description: str = ""
) -> Plugin:
    if not is_org_member(actor, organisation):
        raise PermissionRefused(f"{actor} is not a member of {organisation}.")
    # not durable: the admin's add/change form calls it inside the transaction Django opens
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


def version_create(*, plugin: Plugin, artifact: UploadedFile, actor: User) -> PluginVersion:
    """Store an uploaded archive as a draft version of ``plugin``.

    The archive is read before anything is stored; if the row cannot be written, the
    stored file is removed again, so a refused upload leaves nothing behind.
    """
    require_perm(actor, "submissions.submit_plugin", plugin, detail=f"{actor} may not submit versions of {plugin}.")
    filename = artifact.name or "artifact"
    facts = inspect_artifact(artifact, filename)
    _refuse_other_plugin(plugin, facts)
    files = index_archive(artifact, filename)
    stored = default_storage.save(artifact_path(None, filename), artifact)
    try:
        # not durable: the admin's add/change form calls it inside the transaction Django opens
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
            _record_revision(version, actor=actor, reason="", files=files)
    except IntegrityError:
        default_storage.delete(stored)
        raise _duplicate(plugin, facts.version) from None
    except BaseException:
        default_storage.delete(stored)
        raise
    return version


def version_submit(*, version: PluginVersion, actor: User) -> PluginVersion:
    with transaction.atomic(durable=True):
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


def version_resubmit(
    *,
    version: PluginVersion,
    actor: User,
    reason: str,
    artifact: UploadedFile | None = None,
    answers: Mapping[int, str] | None = None,
) -> PluginVersion:
    """The author answers a request for changes; the pipeline starts a new round.

    1. With ``artifact``, the archive is inspected as an upload is (plugin name, version
       number and category must match this version) and becomes the version's next
       revision: its current artifact, which the new round's checks read. The previous
       revision and its file stay.
    2. Each of ``answers`` (thread id: text) is added as a reply to an open thread
       addressed to the authors.
    One transaction: if any part is refused, nothing is written and the stored file is
    removed again.
    """
    reason = require_reason(reason, action="resubmit")
    replies = _clean_answers(answers)
    current = _refuse_early(version, actor, "resubmit")  # 403 and 409 before reading a large upload
    facts, stored = _store_next_artifact(current, artifact) if artifact is not None else (None, "")
    filename = (artifact.name if artifact is not None else "") or "artifact"
    committed: list[bool] = []
    try:
        files = index_archive(artifact, filename) if artifact is not None else {}  # slow: before the lock
        with transaction.atomic(durable=True):
            transaction.on_commit(lambda: committed.append(True))  # first hook: the rows are written
            version = _lock_as_author(version, actor)
            changes: dict = {"submitted_by": actor, "submitted_at": timezone.now()}
            data: dict = {"revision": version.revision}
            if facts is not None:
                _refuse_same_artifact(version, facts)
                data = {"revision": version.revision + 1, "old_sha256": version.sha256, "new_sha256": facts.sha256}
                changes |= _current_artifact(facts, stored, filename, version.revision + 1)
            if replies:
                data["answers"] = sorted(replies)
            apply_transition(
                version, "resubmit", actor=actor, action="version.resubmit", reason=reason, changes=changes, data=data
            )
            if facts is not None:
                _record_revision(version, actor=actor, reason=reason, files=files)
            if replies:
                hooks.fire(hooks.VERSION_ANSWERED, version=version, actor=actor, replies=replies)  # reviews replies
            _start_review_after_commit(version)
    except BaseException:
        if stored and not committed:  # a hook failing after the commit must not take the live file
            default_storage.delete(stored)
        raise
    return version


def version_withdraw(*, version: PluginVersion, actor: User, reason: str) -> PluginVersion:
    reason = require_reason(reason, action="withdraw")
    with transaction.atomic(durable=True):
        version = _lock_as_author(version, actor)
        apply_transition(version, "withdraw", actor=actor, action="version.withdraw", reason=reason)
        hooks.fire(hooks.VERSION_WITHDRAWN, version=version)  # reviews ends the round
    return version


# -- helpers ---------------------------------------------------------------------------


def _refuse_other_plugin(plugin: Plugin, facts: ArtifactFacts) -> None:
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


def _refuse_early(version: PluginVersion, actor: User, transition: str) -> PluginVersion:
    """Permission and state, read without a lock (the locked row is checked again)."""
    version = PluginVersion.objects.select_related("plugin").get(pk=version.pk)
    require_perm(
        actor, "submissions.submit_plugin", version.plugin, detail=f"{actor} is not an author of {version.plugin}."
    )
    if not can_proceed(getattr(version, transition)):
        raise TransitionRefused(f"Cannot {transition} {version}: it is {version.get_status_display().lower()}.")
    return version


def _store_next_artifact(version: PluginVersion, artifact: UploadedFile) -> tuple[ArtifactFacts, str]:
    """Inspect a new archive for ``version`` like an upload and store it; nothing is stored
    if it is refused."""
    filename = artifact.name or "artifact"
    facts = inspect_artifact(artifact, filename)
    _refuse_other_plugin(version.plugin, facts)
    if facts.version != version.version:
        raise ValidationFailed(
            f"The manifest is for version {facts.version!r}; this is version {version.version!r}. "
            "A different version number is a new version, not a revision.",
            code="version_mismatch",
            errors=[
                {"field": "plugin.version", "code": "version_mismatch", "message": f"Expected {version.version!r}."}
            ],
        )
    _refuse_same_artifact(version, facts)
    return facts, default_storage.save(artifact_path(None, filename), artifact)


def _refuse_same_artifact(version: PluginVersion, facts: ArtifactFacts) -> None:
    if facts.sha256 == version.sha256:
        raise ValidationFailed(
            f"This is the archive of revision {version.revision} already; send the fixed one, "
            "or resubmit without an artifact.",
            code="same_artifact",
            errors=[{"field": "artifact", "code": "same_artifact", "message": "Unchanged archive."}],
        )


def _current_artifact(facts: ArtifactFacts, stored: str, filename: str, number: int) -> dict:
    return {
        "artifact": stored,
        "artifact_name": filename[:255],
        "sha256": facts.sha256,
        "size": facts.size,
        "manifest": facts.manifest,
        "revision": number,
    }


def _record_revision(version: PluginVersion, *, actor: User, reason: str, files: FileIndex) -> VersionRevision:
    """A copy of the version's current artifact fields as revision ``version.revision``,
    with the index of the archive's files (submissions/artifact_files.py)."""
    revision = VersionRevision(
        version=version,
        number=version.revision,
        artifact=version.artifact.name,
        artifact_name=version.artifact_name,
        sha256=version.sha256,
        size=version.size,
        manifest=version.manifest,
        reason=reason,
        files=files,
        created_by=actor,
    )
    revision._history_user = actor  # type: ignore[attr-defined]
    revision._change_reason = "version.revise"  # type: ignore[attr-defined]
    revision.save()
    return revision


def _clean_answers(answers: Mapping[int, str] | None) -> dict[int, str]:
    cleaned: dict[int, str] = {}
    for key, body in (answers or {}).items():
        text = body.strip() if isinstance(body, str) else ""
        if not is_id(key) or not text:
            raise ValidationFailed(
                "Each answer names a thread by its id and says something.",
                code="invalid_answer",
                errors=[{"field": f"answers[{key}]", "code": "invalid_answer", "message": "A non-empty answer."}],
            )
        cleaned[int(key)] = text
    return cleaned


def _lock_as_author(version: PluginVersion, actor: User) -> PluginVersion:
    version = PluginVersion.objects.select_for_update(of=("self",)).select_related("plugin").get(pk=version.pk)
    require_perm(
        actor, "submissions.submit_plugin", version.plugin, detail=f"{actor} is not an author of {version.plugin}."
    )
    return version


def lock_plugin_versions(version: PluginVersion, *, also: Q) -> dict[int, PluginVersion]:
    """Lock ``version`` and its plugin's versions matching ``also``, in primary-key order,
    so that concurrent deploys, roll-backs and revocations queue instead of deadlocking."""
    rows = (
        PluginVersion.objects.select_for_update()
        .filter(Q(pk=version.pk) | (Q(plugin_id=version.plugin_id) & also))
        .order_by("pk")
    )
    return {row.pk: row for row in rows}


def lock_with_perm(version: PluginVersion, actor: User, perm: str, what: str) -> PluginVersion:
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
