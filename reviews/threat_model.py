"""The threat model of a version: prefilled from plugin.toml and the sandbox, filled in by the
author, reviewed by the security reviewer.

Prefill adds what the manifest and the behaviour capture already say (data categories become
assets, declared and observed network endpoints become entry points, each boundary the plugin
crosses becomes a trust boundary) and a starting threat per boundary; it never removes or
overwrites what the author wrote.

Each threat is then addressed by a transition (mitigate, accept the risk, transfer, reopen),
never by editing its status; every write here is audited in its own transaction.
"""

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from governance.audit import audit_record
from governance.errors import PermissionRefused, TransitionRefused, ValidationFailed
from governance.models import StageKind
from governance.permissions import refuse_own_submission, require_perm
from governance.transitions import apply_transition, require_reason, save_with_audit
from submissions.models import PluginVersion

from .models import (
    ElementKind,
    Finding,
    Source,
    Stride,
    Threat,
    ThreatModel,
    ThreatModelElement,
    ThreatModelStatus,
)

EDITABLE = (ThreatModelStatus.DRAFT, ThreatModelStatus.CHANGES_REQUESTED)
Row = ThreatModelElement | Threat


def can_author(*, actor: User, version: PluginVersion) -> bool:
    return actor.has_perm("submissions.submit_plugin", version.plugin)


def can_review(*, actor: User, version: PluginVersion) -> bool:
    if actor.has_perm("reviews.waive_stagereview"):
        return True
    reviews = version.stage_reviews.filter(stage__kind=StageKind.SECURITY, round=version.review_round)
    return any(actor.has_perm("reviews.review_stagereview", review) for review in reviews)


def threat_model_prefill(*, version: PluginVersion, actor: User) -> ThreatModel:
    """Create the version's threat model, or add what is new since the last prefill."""
    if not (can_author(actor=actor, version=version) or can_review(actor=actor, version=version)):
        raise PermissionRefused(f"{actor} may not edit the threat model of {version}.")
    with transaction.atomic(durable=True):
        version = PluginVersion.objects.select_for_update().get(pk=version.pk)
        model = ThreatModel.objects.filter(version=version).first() or ThreatModel(version=version)
        if model.pk and model.status not in EDITABLE:
            raise TransitionRefused(f"The threat model is {model.get_status_display().lower()}; it is not changed.")
        save_with_audit(model, actor=actor, action="threat_model.prefill")
        for kind, name, description, source in suggested_elements(version):
            element, created = ThreatModelElement.objects.get_or_create(
                threat_model=model, kind=kind, name=name[:200], defaults={"description": description, "source": source}
            )
            if created and kind != ElementKind.ASSET:
                for title, stride, mitigation in suggested_threats(kind, name, version.manifest):
                    Threat.objects.create(
                        threat_model=model, element=element, title=title[:200], stride=stride,
                        mitigation=mitigation, source=source,
                    )  # fmt: skip
    return model


def suggested_elements(version: PluginVersion) -> list[tuple[str, str, str, str]]:
    manifest = version.manifest
    permissions, data = manifest["permissions"], manifest["data"]
    entrypoint = manifest["plugin"]["entrypoint"]
    out: list[tuple[str, str, str, str]] = [
        (ElementKind.ENTRY_POINT, f"Host API: {entrypoint}", "Called by the host.", Source.MANIFEST),
        (ElementKind.TRUST_BOUNDARY, "Host platform / plugin", "The sandbox the host runs it in.", Source.MANIFEST),
    ]
    for category in data.get("categories", []):
        residency = ", ".join(data.get("residency", [])) or "unstated"
        out.append(
            (ElementKind.ASSET, f"{category} data", f"Processed by the plugin; residency {residency}.", Source.MANIFEST)
        )
    for name in permissions["environment"]:
        out.append((ElementKind.ASSET, f"Secret in {name}", "Read from the environment.", Source.MANIFEST))
    for endpoint in permissions["network"]:
        out.append((ElementKind.ENTRY_POINT, f"Network: {endpoint}", "Declared in plugin.toml.", Source.MANIFEST))
    if permissions["network"]:
        out.append((ElementKind.TRUST_BOUNDARY, "Plugin / remote services", "Data leaves the host.", Source.MANIFEST))
    if permissions["filesystem"]:
        out.append(
            (ElementKind.TRUST_BOUNDARY, "Plugin / host files", ", ".join(permissions["filesystem"]), Source.MANIFEST)
        )
    if permissions["subprocess"]:
        out.append((ElementKind.TRUST_BOUNDARY, "Plugin / child processes", "subprocess = true", Source.MANIFEST))
    observed = Finding.objects.filter(version=version, kind="behaviour", rule_id="behaviour.undeclared-network")
    for target in observed.values_list("data__target", flat=True).distinct():
        out.append(
            (ElementKind.ENTRY_POINT, f"Network: {target}", "Observed in the sandbox, not declared.", Source.BEHAVIOUR)
        )
    return out


def suggested_threats(kind: str, name: str, manifest: dict) -> list[tuple[str, str, str]]:
    in_transit = "TLS" if manifest["data"].get("encryption_in_transit") else "None declared: encrypt in transit"
    if name.startswith("Network:"):
        return [
            (f"Data disclosed to or intercepted on {name[9:]}", Stride.INFORMATION_DISCLOSURE, in_transit),
            (f"{name[9:]} impersonated", Stride.SPOOFING, "Verify the server certificate."),
        ]
    if name.startswith("Host API"):
        return [("Hostile input from the host crashes or stalls the plugin", Stride.DENIAL_OF_SERVICE, "")]
    if name == "Plugin / child processes":
        return [("Commands run with the plugin's rights", Stride.ELEVATION_OF_PRIVILEGE, "")]
    if name == "Plugin / host files":
        return [("Files outside the declared paths read or changed", Stride.TAMPERING, "")]
    return []


def threat_model_edit(*, threat_model: ThreatModel, actor: User, changed: list[str]) -> ThreatModel:
    """The author saved the threat model's own fields (the admin's change form)."""
    with transaction.atomic():
        require_editable(threat_model=_locked(threat_model.pk), actor=actor)
        save_with_audit(threat_model, actor=actor, action="threat_model.edit", data={"changed": sorted(changed)})
    return threat_model


def require_editable(*, threat_model: ThreatModel, actor: User) -> None:
    require_perm(
        actor,
        "submissions.submit_plugin",
        threat_model.version.plugin,
        detail=f"{actor} is not an author of {threat_model.version.plugin}.",
    )
    if threat_model.status not in EDITABLE:
        raise TransitionRefused(f"The threat model is {threat_model.get_status_display().lower()}; it is not edited.")


def _locked(pk: int) -> ThreatModel:
    """The threat model, locked until the transaction ends: its rows change only under it."""
    return ThreatModel.objects.select_for_update().select_related("version__plugin").get(pk=pk)


# -- its rows: elements and threats ------------------------------------------------------


def threat_model_row_save(*, row: Row, actor: User, changed: list[str]) -> Row:
    """The author adds or edits an element or a threat (the admin's inline rows). A threat's
    status is not edited here: it moves only by the transitions below."""
    adding = row._state.adding
    with transaction.atomic():
        threat_model = _locked(row.threat_model_id)
        require_editable(threat_model=threat_model, actor=actor)
        if adding:
            row.source = Source.AUTHOR  # what the author writes is theirs, whatever the caller sent
        else:
            _refuse_moves(row)
        if isinstance(row, Threat) and row.element is not None and row.element.threat_model_id != threat_model.pk:
            raise ValidationFailed(
                f"{row.element} belongs to another threat model.",
                code="wrong_threat_model",
                errors=[{"field": "element", "code": "wrong_threat_model", "message": "Not in this threat model."}],
            )
        kind = row._meta.model_name
        save_with_audit(
            row,
            actor=actor,
            action=f"{kind}.add" if adding else f"{kind}.edit",
            data={"threat_model": threat_model.pk, "changed": sorted(changed)},
        )
    return row


def _refuse_moves(row: Row) -> None:
    """An edit neither moves a row to another threat model nor carries a status change made
    outside the transition services."""
    stored = type(row).objects.select_for_update().get(pk=row.pk)
    if stored.threat_model_id != row.threat_model_id:
        raise ValidationFailed(f"{row} belongs to another threat model.", code="wrong_threat_model")
    if isinstance(row, Threat) and isinstance(stored, Threat) and stored.status != row.status:
        raise TransitionRefused(f"{row} is {stored.get_status_display().lower()}; its status moves by its transitions.")


def why_row_stays(row: Row) -> str:
    """Why the author may not delete ``row``; empty if they may."""
    origin = f"{row} comes from {row.get_source_display()}, not from the author"
    if isinstance(row, Threat):
        return f"{origin}: mitigate, accept or transfer it instead." if row.source != Source.AUTHOR else ""
    if row.source != Source.AUTHOR:
        return f"{origin}: it stays (the next prefill would add it again)."
    named_by = list(row.threats.values_list("title", flat=True)[:3])
    return f"{row} is named by threats ({'; '.join(named_by)}): change them first." if named_by else ""


def threat_model_row_delete(*, row: Row, actor: User) -> None:
    """The author removes an element or a threat they wrote. What the manifest or the
    sandbox put there stays: a threat is addressed by a transition, not removed."""
    with transaction.atomic():
        threat_model = _locked(row.threat_model_id)
        require_editable(threat_model=threat_model, actor=actor)
        why = why_row_stays(row)
        if why:
            raise TransitionRefused(why)
        kind = row._meta.model_name
        audit_record(actor=actor, action=f"{kind}.delete", target=row, data={"threat_model": threat_model.pk})
        row._history_user = actor  # type: ignore[union-attr]
        row.delete()


def threat_mitigate(*, threat: Threat, actor: User, mitigation: str = "") -> Threat:
    """The author says how the plugin counters the threat (or keeps the mitigation written)."""
    with transaction.atomic(durable=True):
        threat_model, threat = _lock_threat(threat)
        require_editable(threat_model=threat_model, actor=actor)
        text = (mitigation or "").strip() or threat.mitigation.strip()
        if not text:
            raise ValidationFailed(
                f"Say how {threat} is mitigated.",
                code="mitigation_required",
                errors=[{"field": "mitigation", "code": "mitigation_required", "message": "Required."}],
            )
        _move(threat, "mitigate", actor=actor, threat_model=threat_model, reason=text, changes={"mitigation": text})
    return threat


def threat_accept_risk(*, threat: Threat, actor: User, reason: str) -> Threat:
    """The author accepts the residual risk; the security reviewer judges it with the model."""
    reason = require_reason(reason, action="accept the risk of a threat")
    with transaction.atomic(durable=True):
        threat_model, threat = _lock_threat(threat)
        require_editable(threat_model=threat_model, actor=actor)
        _move(threat, "accept_risk", actor=actor, threat_model=threat_model, reason=reason)
    return threat


def threat_transfer(*, threat: Threat, actor: User, reason: str) -> Threat:
    """Someone else carries the threat: the reason names who (the host platform, the operator)."""
    reason = require_reason(reason, action="transfer a threat")
    with transaction.atomic(durable=True):
        threat_model, threat = _lock_threat(threat)
        require_editable(threat_model=threat_model, actor=actor)
        _move(threat, "transfer", actor=actor, threat_model=threat_model, reason=reason)
    return threat


def threat_reopen(*, threat: Threat, actor: User, reason: str = "") -> Threat:
    """The author reopens a threat while the model is editable; the security reviewer reopens
    one while the model is under review, saying why (then sends the model back)."""
    with transaction.atomic(durable=True):
        threat_model, threat = _lock_threat(threat)
        version = threat_model.version
        if threat_model.status == ThreatModelStatus.SUBMITTED and can_review(actor=actor, version=version):
            refuse_own_submission(actor, version)
            reason = require_reason(reason, action="reopen a threat under review")
        else:
            require_editable(threat_model=threat_model, actor=actor)
        _move(threat, "reopen", actor=actor, threat_model=threat_model, reason=reason.strip())
    return threat


def _lock_threat(threat: Threat) -> tuple[ThreatModel, Threat]:
    """The threat model, then the threat (the order every row write takes), both fresh."""
    threat_model = _locked(threat.threat_model_id)
    return threat_model, Threat.objects.select_for_update().get(pk=threat.pk, threat_model=threat_model)


def _move(
    threat: Threat,
    transition: str,
    *,
    actor: User,
    threat_model: ThreatModel,
    reason: str = "",
    changes: dict | None = None,
) -> None:
    apply_transition(
        threat,
        transition,
        actor=actor,
        action=f"threat.{transition}",
        reason=reason,
        changes=changes,
        data={"threat_model": threat_model.pk},
    )


def threat_model_submit(*, threat_model: ThreatModel, actor: User) -> ThreatModel:
    with transaction.atomic(durable=True):
        threat_model = ThreatModel.objects.select_for_update().get(pk=threat_model.pk)
        if not can_author(actor=actor, version=threat_model.version):
            raise PermissionRefused(f"{actor} is not an author of {threat_model.version.plugin}.")
        if not threat_model.threats.exists():
            raise TransitionRefused("A threat model needs at least one threat before it is submitted.")
        apply_transition(threat_model, "submit", actor=actor, action="threat_model.submit")
    return threat_model


def threat_model_decide(*, threat_model: ThreatModel, actor: User, accept: bool, reason: str = "") -> ThreatModel:
    """The security reviewer accepts the threat model or sends it back with what to change."""
    if not accept:
        reason = require_reason(reason, action="request changes to a threat model")
    with transaction.atomic(durable=True):
        threat_model = ThreatModel.objects.select_for_update().select_related("version").get(pk=threat_model.pk)
        if not can_review(actor=actor, version=threat_model.version):
            raise PermissionRefused(f"{actor} is not a security reviewer of {threat_model.version}.")
        refuse_own_submission(actor, threat_model.version)
        apply_transition(
            threat_model,
            "accept" if accept else "request_changes",
            actor=actor,
            action="threat_model.accept" if accept else "threat_model.request_changes",
            reason=reason,
            changes={"reviewed_by": actor, "reviewed_at": timezone.now(), "review_note": reason},
        )
    return threat_model
