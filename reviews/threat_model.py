"""The threat model of a version: prefilled from plugin.toml and the sandbox, filled in by the
author, reviewed by the security reviewer.

Prefill adds what the manifest and the behaviour capture already say (data categories become
assets, declared and observed network endpoints become entry points, each boundary the plugin
crosses becomes a trust boundary) and a starting threat per boundary; it never removes or
overwrites what the author wrote.
"""

from django.db import transaction
from django.utils import timezone

from governance.errors import PermissionRefused, TransitionRefused
from governance.models import StageKind
from governance.permissions import refuse_own_submission
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


def can_author(*, actor, version: PluginVersion) -> bool:
    return actor.has_perm("submissions.submit_plugin", version.plugin)


def can_review(*, actor, version: PluginVersion) -> bool:
    if actor.has_perm("reviews.waive_stagereview"):
        return True
    reviews = version.stage_reviews.filter(stage__kind=StageKind.SECURITY, round=version.review_round)
    return any(actor.has_perm("reviews.review_stagereview", review) for review in reviews)


def threat_model_prefill(*, version: PluginVersion, actor) -> ThreatModel:
    """Create the version's threat model, or add what is new since the last prefill."""
    if not (can_author(actor=actor, version=version) or can_review(actor=actor, version=version)):
        raise PermissionRefused(f"{actor} may not edit the threat model of {version}.")
    with transaction.atomic():
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


def threat_model_edit(*, threat_model: ThreatModel, actor, changed: list[str]) -> ThreatModel:
    """The author saved the threat model or its rows (the admin's change form)."""
    require_editable(threat_model=threat_model, actor=actor)
    save_with_audit(threat_model, actor=actor, action="threat_model.edit", data={"changed": sorted(changed)})
    return threat_model


def require_editable(*, threat_model: ThreatModel, actor) -> None:
    if not can_author(actor=actor, version=threat_model.version):
        raise PermissionRefused(f"{actor} is not an author of {threat_model.version.plugin}.")
    if threat_model.status not in EDITABLE:
        raise TransitionRefused(f"The threat model is {threat_model.get_status_display().lower()}; it is not edited.")


def threat_model_submit(*, threat_model: ThreatModel, actor) -> ThreatModel:
    with transaction.atomic():
        threat_model = ThreatModel.objects.select_for_update().get(pk=threat_model.pk)
        if not can_author(actor=actor, version=threat_model.version):
            raise PermissionRefused(f"{actor} is not an author of {threat_model.version.plugin}.")
        if not threat_model.threats.exists():
            raise TransitionRefused("A threat model needs at least one threat before it is submitted.")
        apply_transition(threat_model, "submit", actor=actor, action="threat_model.submit")
    return threat_model


def threat_model_decide(*, threat_model: ThreatModel, actor, accept: bool, reason: str = "") -> ThreatModel:
    """The security reviewer accepts the threat model or sends it back with what to change."""
    if not accept:
        reason = require_reason(reason, action="request changes to a threat model")
    with transaction.atomic():
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
