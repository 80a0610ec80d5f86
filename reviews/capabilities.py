"""The capability matrix of a version: what plugin.toml declares, what the static scan detected and
what the sandbox observed, side by side, in one vocabulary (a read; it writes nothing).

    =================  ===========================  ==============================  =================
    capability         declared by (plugin.toml)    detected (GuardDog rules)       observed (sandbox)
    =================  ===========================  ==============================  =================
    network            ``network`` host:port        capability-network-*            connect, bind,
                                                                                    look-up
    process-spawn      ``subprocess = true``        capability-process-spawn        process start
    filesystem-read    ``read:`` entries            capability-filesystem-read      file read
    filesystem-write   ``write:`` entries           …-filesystem-write-executable   file write
    filesystem-delete  ``write:`` entries           capability-filesystem-delete    (a write)
    environment        ``environment`` names        threat-runtime-environment-read variable read
    dynamic-code       never                                                        compile/exec
    process-schedule,  never                        capability-process-schedule,
    install-hooks, …                                -process-hooks, …
    =================  ===========================  ==============================  =================

Whether a sighting is declared is what the checks themselves judged: GuardDog (``is_declared``)
reports each undeclared capability it detected as an ``undeclared-capability`` finding and lists
every capability, declared or not, in its run's summary; for each target the sandbox observed
(the behaviour check's summary, ``observed``), the behaviour check's
``network_declared`` and ``path_declared`` for each target the sandbox observed. A row is a
*mismatch* when something detected or observed is not declared; a declared permission that neither
check saw is *unused* (informational: the sandbox only sees the plugin start). Only the runs of the
version's current revision count (the latest of each check, as ``reviews.selectors.current_runs``).
"""

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from submissions.models import PluginVersion

from .checks.behaviour import network_declared, observed_capability, path_declared
from .checks.guarddog_capabilities import CAPABILITY_RULES, capability_of, is_capability_rule
from .models import CheckRun, Finding, RunOrigin, RunStatus
from .selectors import latest_runs

SCAN_CHECK = "security.guarddog"
SANDBOX_CHECK = "security.behaviour"
FINISHED = (RunStatus.SUCCEEDED, RunStatus.FAILED)  # a run that judged the version
NOT_RUN = "not_run"
EVIDENCE_LIMIT = 50  # sightings kept per capability and column

TITLES = {
    "network": "Network access",
    "process-spawn": "Starting processes",
    "filesystem-read": "Reading files",
    "filesystem-write": "Writing files",
    "filesystem-delete": "Deleting files",
    "environment": "Environment variables",
    "dynamic-code": "Dynamic code",
    "process-schedule": "Scheduled tasks",
    "install-hooks": "Install-time hooks",
    "browser-data": "Browser data",
    "clipboard": "Clipboard",
}
# plugin.toml's [permissions] key for each capability; "" where no permission can grant it
PERMISSION = {rule.name: rule.permission for rule in CAPABILITY_RULES.values()} | {"dynamic-code": ""}
# Always a row, declared or not: what a plugin.toml permission can grant (delete shares write:).
ALWAYS_SHOWN = ("network", "process-spawn", "filesystem-read", "filesystem-write", "environment")


@dataclass(frozen=True)
class Sighting:
    """One thing a check saw: a GuardDog rule hit, or a target the sandbox reached."""

    target: str  # the GuardDog rule, or the host:port, path, command or variable
    declared: bool
    path: str = ""  # where in the plugin's code, when known
    line: int | None = None
    finding_id: int | None = None  # the finding that reports it, when it is undeclared


@dataclass(frozen=True)
class CapabilityRow:
    capability: str  # "network", "process-spawn", ... (the vocabulary above)
    title: str
    permission: str  # the [permissions] key that can declare it, "" for none
    declared: tuple[str, ...]  # the manifest entries that grant it ("api.acme.example:443", "subprocess = true")
    detected: tuple[Sighting, ...]  # by the static scan; empty: not detected
    observed: tuple[Sighting, ...]  # in the sandbox; empty: not observed
    mismatch: bool  # detected or observed, and not declared
    unused: bool  # declared, and neither check saw it (informational)
    reasons: tuple[str, ...]  # why it is a mismatch, or unused

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class CapabilityMatrix:
    rows: tuple[CapabilityRow, ...]
    scan: str  # status of the current GuardDog run ("succeeded", "failed", ...) or "not_run"
    sandbox: str  # the same for the behaviour check

    @property
    def mismatches(self) -> tuple[CapabilityRow, ...]:
        return tuple(row for row in self.rows if row.mismatch)

    @property
    def seen(self) -> frozenset[str]:
        """The capabilities detected or observed, declared or not."""
        return frozenset(row.capability for row in self.rows if row.detected or row.observed)

    def as_dict(self) -> dict[str, Any]:
        return {"scan": self.scan, "sandbox": self.sandbox, "rows": [row.as_dict() for row in self.rows]}


def capability_matrix(*, version: PluginVersion, runs: Iterable[CheckRun] | None = None) -> CapabilityMatrix:
    """Every capability of ``version``'s current revision: declared, detected, observed, mismatch.

    Two queries whatever the number of findings: the GuardDog and behaviour runs of the current
    revision (skipped when ``runs`` is given: the version's current runs, e.g. ``current_runs``,
    with ``summary`` loaded, or one query per run reads it), and their capability and behaviour
    findings. ``version.manifest`` gives the declarations."""
    scan, sandbox = _runs(version, runs)
    findings = _findings([run for run in (scan, sandbox) if run is not None])
    permissions = (version.manifest or {}).get("permissions") or {}
    detected = _detected(scan, findings)
    observed = _observed(sandbox, findings, permissions)
    names = [*ALWAYS_SHOWN, *sorted((set(detected) | set(observed)) - set(ALWAYS_SHOWN), key=_order)]
    both_ran = all(run is not None and run.status in FINISHED for run in (scan, sandbox))
    rows = tuple(
        _row(name, permissions, detected.get(name, ()), observed.get(name, ()), both_ran=both_ran) for name in names
    )
    return CapabilityMatrix(rows=rows, scan=_status(scan), sandbox=_status(sandbox))


def _order(name: str) -> tuple[int, str]:
    order = list(TITLES)
    return (order.index(name) if name in order else len(order), name)


def _runs(version: PluginVersion, runs: Iterable[CheckRun] | None) -> tuple[CheckRun | None, CheckRun | None]:
    if runs is None:
        runs = CheckRun.objects.filter(
            version_id=version.pk, revision=version.revision, check_key__in=(SCAN_CHECK, SANDBOX_CHECK)
        ).only("pk", "check_key", "tool", "status", "posted_by", "origin", "summary")
    ours = [
        r for r in latest_runs(runs) if r.origin == RunOrigin.INTERNAL and r.check_key in (SCAN_CHECK, SANDBOX_CHECK)
    ]
    by_key = {run.check_key: run for run in ours}
    return by_key.get(SCAN_CHECK), by_key.get(SANDBOX_CHECK)


def _status(run: CheckRun | None) -> str:
    return run.status if run is not None else NOT_RUN


def _findings(runs: list[CheckRun]) -> list[Finding]:
    finished = [run.pk for run in runs if run.status in FINISHED]
    if not finished:
        return []
    return list(
        Finding.objects.filter(check_run__in=finished, kind__in=("capability", "behaviour"))
        .only("pk", "check_run_id", "kind", "data")
        .order_by("pk")
    )


def _detected(scan: CheckRun | None, findings: list[Finding]) -> dict[str, list[Sighting]]:
    """What GuardDog saw: every capability its summary names (declared or not, with the rules that
    hit), and the evidence of its ``undeclared-capability`` findings."""
    if scan is None or scan.status not in FINISHED:
        return {}
    summary = scan.summary or {}
    undeclared = {
        str(f.data.get("capability")): f for f in findings if f.kind == "capability" and f.check_run_id == scan.pk
    }
    rules: dict[str, list[str]] = {name: [] for name in summary.get("capabilities", [])}
    for rule in summary.get("rules_hit", []):
        if is_capability_rule(rule):
            rules.setdefault(capability_of(rule).name, []).append(rule)
    detected: dict[str, list[Sighting]] = {}
    for name in sorted(set(rules) | set(undeclared)):
        finding = undeclared.get(name)
        if finding is not None:
            evidence = finding.data.get("evidence") or [{"rule": ", ".join(finding.data.get("rules", []))}]
            detected[name] = [_evidence(hit, finding) for hit in evidence[:EVIDENCE_LIMIT]]
        else:  # the check judged it declared: it reports every undeclared capability as a finding
            detected[name] = [Sighting(target=rule, declared=True) for rule in rules[name] or [name]]
    return detected


def _evidence(hit: Mapping[str, Any], finding: Finding) -> Sighting:
    line = hit.get("line")
    return Sighting(
        target=str(hit.get("rule", "")),
        declared=False,
        path=str(hit.get("path", "")),
        line=line if isinstance(line, int) else None,
        finding_id=finding.pk,
    )


def _observed(
    sandbox: CheckRun | None, findings: list[Finding], permissions: Mapping[str, Any]
) -> dict[str, list[Sighting]]:
    """What the plugin reached in the sandbox: the behaviour check's summary lists every target,
    declared or not (runs before it did: the undeclared ones, from its findings)."""
    if sandbox is None or sandbox.status not in FINISHED:
        return {}
    reported: dict[tuple[str, str], Finding] = {}
    for finding in findings:
        if finding.kind == "behaviour" and finding.check_run_id == sandbox.pk and finding.data.get("kind"):
            reported.setdefault((observed_capability(finding.data), str(finding.data.get("target", ""))), finding)
    targets: dict[str, set[str]] = {}
    for name, seen in ((sandbox.summary or {}).get("observed") or {}).items():
        targets.setdefault(name, set()).update(map(str, seen))
    for name, target in reported:
        targets.setdefault(name, set()).add(target)
    return {
        name: [
            _observation(name, target, reported.get((name, target)), permissions)
            for target in sorted(targets[name])[:EVIDENCE_LIMIT]
        ]
        for name in sorted(targets)
    }


def _observation(name: str, target: str, finding: Finding | None, permissions: Mapping[str, Any]) -> Sighting:
    where = (finding.data.get("where") or {}) if finding is not None else {}
    return Sighting(
        target=target,
        declared=observed_declared(name, target, permissions),
        path=str(where.get("file", "")),
        line=where.get("line") if isinstance(where.get("line"), int) else None,
        finding_id=finding.pk if finding is not None else None,
    )


def observed_declared(capability: str, target: str, permissions: Mapping[str, Any]) -> bool:
    """Whether plugin.toml declares what the sandbox saw, as the behaviour check judges it."""
    match capability:
        case "network":
            return network_declared(target, list(permissions.get("network") or []))
        case "filesystem-read" | "filesystem-write":
            access = capability.removeprefix("filesystem-")
            return path_declared(target, access, list(permissions.get("filesystem") or []))
        case "process-spawn":
            return permissions.get("subprocess") is True
        case "environment":
            return target in (permissions.get("environment") or [])
    return False


def declared_entries(capability: str, permissions: Mapping[str, Any]) -> tuple[str, ...]:
    """The manifest entries that grant ``capability``."""
    entries = [str(entry) for entry in permissions.get("filesystem") or []]
    match capability:
        case "network" | "environment":
            return tuple(str(entry) for entry in permissions.get(capability) or [])
        case "process-spawn":
            return ("subprocess = true",) if permissions.get("subprocess") is True else ()
        case "filesystem-read":
            return tuple(entry for entry in entries if entry.startswith("read:"))
        case "filesystem-write" | "filesystem-delete":
            return tuple(entry for entry in entries if entry.startswith("write:"))
    return ()


def _row(
    name: str,
    permissions: Mapping[str, Any],
    detected: Iterable[Sighting],
    observed: Iterable[Sighting],
    *,
    both_ran: bool,
) -> CapabilityRow:
    detected, observed = tuple(detected), tuple(observed)
    declared = declared_entries(name, permissions)
    title = TITLES.get(name, name)
    reasons = _mismatch_reasons(title, detected, observed)
    mismatch = bool(reasons)
    unused = bool(declared) and not detected and not observed and both_ran
    if unused:
        reasons.append(
            f"{title}: declared ({', '.join(declared)}) but neither detected by the static scan nor "
            "observed in the sandbox: an unused permission?"
        )
    return CapabilityRow(
        capability=name,
        title=title,
        permission=PERMISSION.get(name, ""),
        declared=declared,
        detected=detected,
        observed=observed,
        mismatch=mismatch,
        unused=unused,
        reasons=tuple(reasons),
    )


def _mismatch_reasons(title: str, detected: tuple[Sighting, ...], observed: tuple[Sighting, ...]) -> list[str]:
    reasons = []
    rules = sorted({s.target for s in detected if not s.declared and s.target})
    if any(not s.declared for s in detected):
        reasons.append(f"{title}: detected by the static scan ({', '.join(rules)}) but not declared.")
    targets = [s.target for s in observed if not s.declared]
    if targets:
        shown = ", ".join(targets[:5]) + (" …" if len(targets) > 5 else "")
        reasons.append(f"{title}: observed in the sandbox ({shown}) but not declared.")
    return reasons
