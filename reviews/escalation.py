"""The "needs human review" flag: what a version adds against the last approved version of its plugin.

1. ``escalation_flags`` compares the version with ``last_approved_version``: a declared permission
   the last approved version's did not cover (a network target, a filesystem entry, subprocesses, an
   environment variable, native code), a capability detected or observed that it did not show
   (reviews/capabilities.py, the current revision's runs of each), a new data category. Each flag
   is ``{"kind": "permission" | "capability" | "data", "what": ..., "reason": ...}``. The first
   version of a plugin (nothing approved before) has none, and neither has an identical update.
2. ``escalation_record`` stores them on the version's security stage review (inside the caller's
   transaction, on rows it locked), with an audit row (``stage.escalation``) whenever they change;
   ``escalation_refresh`` does the same in a transaction of its own when a security check finishes
   (reviews/checks/engine.py ``after_run``).
3. While flagged, the stage does not pass on its own (``stage_auto_pass`` refuses, with an audit
   row saying why), and a reviewer's pass needs a reason, which acknowledges the flags
   (``escalation_acknowledged_at``; the flags are in the ``stage.pass`` audit row's data).
"""

from collections.abc import Iterable, Mapping
from typing import Any

from django.db import transaction

from governance.models import StageKind
from governance.transitions import save_with_audit
from submissions.diff import base_revision_for
from submissions.models import PluginVersion

from .capabilities import CapabilityMatrix, capability_matrix
from .checks.behaviour import network_declared, path_declared
from .models import StageReview

KINDS = ("permission", "capability", "data")
Flag = dict[str, str]


def last_approved_version(*, version: PluginVersion) -> PluginVersion | None:
    """The plugin's most recently approved earlier version whose approval stands (approved,
    deployed or superseded; not revoked or rolled back), as the dossier's diff compares with it
    (``submissions.diff.base_revision_for``), or None: nothing was approved before. The diff's
    fallback to the version's own previous revision is no baseline here."""
    base = base_revision_for(version)
    return base.version if base is not None and base.version_id != version.pk else None


def escalation_flags(*, version: PluginVersion) -> list[Flag]:
    """What ``version`` adds against the last approved version, each with its reason (about five
    queries: the baseline, and the capability matrix of each)."""
    base = last_approved_version(version=version)
    if base is None:
        return []
    label = f"{base.version}, the last approved version"
    flags = [
        *permission_flags(before=base.manifest, after=version.manifest, label=label),
        *capability_flags(
            before=capability_matrix(version=base), after=capability_matrix(version=version), label=label
        ),
        *data_flags(before=base.manifest, after=version.manifest, label=label),
    ]
    return sorted(flags, key=lambda flag: (KINDS.index(flag["kind"]), flag["what"]))


def _flag(kind: str, what: str, reason: str) -> Flag:
    return {"kind": kind, "what": what, "reason": reason}


def _entries(value: Any) -> list[str]:
    return [str(entry) for entry in value] if isinstance(value, list | tuple) else []


def _covered(pattern: str, old_patterns: list[str]) -> bool:
    """A newly declared ``host:port`` pattern the old ones already allow. Unlike a connection
    the sandbox observed, a declared port ``*`` is covered only by an old port ``*``."""
    port = pattern.rpartition(":")[2]
    if port == "*":
        return network_declared(pattern, [p for p in old_patterns if p.rpartition(":")[2] == "*"])
    return network_declared(pattern, old_patterns)


def permission_flags(*, before: Mapping[str, Any], after: Mapping[str, Any], label: str) -> list[Flag]:
    """Declarations the last approved version's did not cover, judged by the behaviour check's own
    matching (``*.acme.example:443`` covers ``api.acme.example:443``; ``write:/tmp`` covers
    ``write:/tmp/cache``)."""
    old, new = before.get("permissions") or {}, after.get("permissions") or {}
    old_network, old_files = _entries(old.get("network")), _entries(old.get("filesystem"))
    flags = [
        _flag("permission", f"network:{target}", f"Declares the new network target {target}; {label} did not.")
        for target in _entries(new.get("network"))
        if target not in old_network and not _covered(target, old_network)
    ]
    for entry in _entries(new.get("filesystem")):
        access, _, path = entry.partition(":")
        if entry not in old_files and not path_declared(path, access, old_files):
            flags.append(
                _flag(
                    "permission", f"filesystem:{entry}", f"Declares the new filesystem entry {entry}; {label} did not."
                )
            )
    if new.get("subprocess") is True and old.get("subprocess") is not True:
        flags.append(
            _flag("permission", "subprocess", f"Declares subprocess = true (it may start processes); {label} did not.")
        )
    old_variables = set(_entries(old.get("environment")))
    flags += [
        _flag(
            "permission",
            f"environment:{name}",
            f"Reads the new environment variable {name}; {label} did not declare it.",
        )
        for name in _entries(new.get("environment"))
        if name not in old_variables
    ]
    if after.get("native") and not before.get("native"):
        flags.append(_flag("permission", "native", f"Declares native code ([native]); {label} had none."))
    return flags


def data_flags(*, before: Mapping[str, Any], after: Mapping[str, Any], label: str) -> list[Flag]:
    old = set(_entries((before.get("data") or {}).get("categories")))
    return [
        _flag("data", f"data:{category}", f"Processes a new data category, {category}; {label} did not.")
        for category in _entries((after.get("data") or {}).get("categories"))
        if category not in old
    ]


def capability_flags(*, before: CapabilityMatrix, after: CapabilityMatrix, label: str) -> list[Flag]:
    """Capabilities the checks saw in this version and not in the last approved one, declared or not."""
    unknown = " (it was neither scanned nor run in the sandbox)" if before.scan == before.sandbox == "not_run" else ""
    flags = []
    for row in after.rows:
        if row.capability not in after.seen or row.capability in before.seen:
            continue
        how = [
            f"detected by the static scan ({_shown(s.target for s in row.detected)})" if row.detected else "",
            f"observed in the sandbox ({_shown(s.target for s in row.observed)})" if row.observed else "",
        ]
        reason = f"{row.title}: {' and '.join(filter(None, how))}; {label} showed none{unknown}."
        flags.append(_flag("capability", f"capability:{row.capability}", reason))
    return flags


def _shown(targets: Iterable[str], limit: int = 3) -> str:
    unique = list(dict.fromkeys(targets))
    return ", ".join(unique[:limit]) + (" …" if len(unique) > limit else "")


def escalation_record(*, review: StageReview, version: PluginVersion) -> list[Flag]:
    """Recompute the flags of a security ``review`` (locked by the caller, in its transaction) and
    store them with an audit row when they changed; other stages have none. Returns the flags."""
    if review.stage.kind != StageKind.SECURITY:
        return []
    flags = escalation_flags(version=version)
    if flags != review.escalation_flags:
        before = review.escalation_flags
        review.escalation_flags, review.escalation_acknowledged_at = flags, None  # acknowledged what it was
        reason = "Needs human review: " + " ".join(f["reason"] for f in flags) if flags else "No longer flagged."
        save_with_audit(
            review, actor=None, action="stage.escalation", reason=reason, data={"flags": flags, "before": before}
        )
    return flags


def escalation_refresh(*, review: StageReview) -> StageReview:
    """System: a check of the security stage finished; flag what the version adds, while the
    review is open (a closed review keeps the flags it was decided on)."""
    with transaction.atomic():
        version = PluginVersion.objects.select_for_update().get(pk=review.version_id)
        review = StageReview.objects.select_for_update(of=("self",)).select_related("stage").get(pk=review.pk)
        review.version = version
        if review.is_open and review.round == version.review_round:
            escalation_record(review=review, version=version)
    return review


def unacknowledged(review: StageReview) -> bool:
    return bool(review.escalation_flags) and review.escalation_acknowledged_at is None


def version_escalation(*, version: PluginVersion) -> dict[str, Any]:
    """The flags on the current round's security review and whether a reviewer acknowledged them
    (one query): ``{"flags": [{"kind", "what", "reason"}, ...], "acknowledged": bool}``."""
    row = (
        StageReview.objects.filter(version_id=version.pk, round=version.review_round, stage__kind=StageKind.SECURITY)
        .order_by("stage__order", "pk")
        .values_list("escalation_flags", "escalation_acknowledged_at")
        .first()
    )
    flags, acknowledged_at = row if row is not None else ([], None)
    return {"flags": list(flags or []), "acknowledged": acknowledged_at is not None}
