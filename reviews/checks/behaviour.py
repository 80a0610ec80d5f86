"""Dynamic behaviour (``security.behaviour``): run the plugin in the sandbox and compare what it
did with what plugin.toml's ``[permissions]`` declares.

    ================  ========================================  ===========================
    behaviour         declared by                               undeclared is
    ================  ========================================  ===========================
    connect, lookup   ``network`` has a matching host:port      high
    file read         a ``read:`` or ``write:`` path above it   medium; critical for keys
                                                                and credentials (~/.ssh ...)
    file write        a ``write:`` path above it                high
    process start     ``subprocess = true``                     high
    environment read  the name is in ``environment``            medium; high for reading
                                                                the whole environment
    dynamic code      never (a compile of source no scanner     high
                      read, whoever calls it; marshal; code
                      objects built; ctypes)
    ================  ========================================  ===========================

The run is traced from outside the sandbox (reviews/sandbox/tracer.py): an effect the
system-call tracer saw that the audit hook did not report, and the manifest does not declare,
is a critical ``behaviour.capture-evaded``, as is a hook that stopped reporting, or whose
state the plugin changed, or that failed its end-of-run self-check from the plugin root.
A plugin stopped by a limit, or that crashed, gets a high finding saying which limit or what
it raised. The plugin's own files, its dependencies and the Python installation are readable
without declaration; everything else of the host is absent from the sandbox anyway.
"""

import json
import posixpath
from collections.abc import Mapping
from fnmatch import fnmatchcase
from typing import Any

from reviews.findings_data import FindingData, unisolated_finding
from reviews.sandbox.environment import plugin_environment
from reviews.sandbox.harness import SELF_CHECK_FILE  # the harness's end-of-run self-check, under the plugin root
from reviews.sandbox.runner import ENV_INSIDE, PLUGIN_INSIDE, SandboxRun, sandbox_run
from reviews.sandbox.tracer import reconcile

from . import CheckContext, CheckOutcome, register
from .eligibility import native_declared

TOOL = "warden-sandbox"
FAIL_AT = ("critical", "high")
SENSITIVE = ("/.ssh/", "/.aws/", "/.gnupg/", "/.netrc", "/.docker/config.json", "/.kube/", "/.config/gcloud/")
SENSITIVE_FILES = ("/etc/shadow", "/etc/gshadow", "/etc/sudoers")


@register("security.behaviour", title="Behaviour in the sandbox", tool=TOOL)
def behaviour(ctx: CheckContext) -> CheckOutcome:
    manifest = ctx.manifest
    environment = plugin_environment(requirements=manifest["dependencies"]["requirements"])
    run = sandbox_run(
        mode="behaviour",
        plugin_root=ctx.root,
        environment=environment,
        entrypoint=manifest["plugin"]["entrypoint"],
        benchmark=manifest.get("performance", {}).get("benchmark", ""),
        variables=manifest["permissions"]["environment"],
        native=native_declared(manifest),
        traced=True,
    )
    # What the sandbox reads anyway, where the plugin's tree and its environment are (inside
    # bubblewrap, and without it)
    ordinary = tuple(f"{path}/" for path in (ENV_INSIDE, PLUGIN_INSIDE, environment, ctx.root))
    findings = behaviour_findings(run, manifest["permissions"], ordinary=ordinary)
    return CheckOutcome(
        passed=not any(f.severity in FAIL_AT for f in findings),
        findings=findings,
        summary={
            "isolation": run.isolation,
            "events": len(_self_check_events(run)[0]),  # the plugin's, not the harness's self-check
            "observed": observed_capabilities(_self_check_events(run)[0]),  # declared or not: the capability matrix
            "limit": run.limit,
            "wall_ms": round(run.wall_ms),
            "tracer": "strace" if run.trace is not None else "none",
            "system_calls": len(run.trace.effects) if run.trace is not None else 0,
        },
        report=sandbox_report(run),
        report_name="behaviour.json",
        tool_version=f"isolation: {run.isolation}, tracer: {'strace' if run.trace is not None else 'none'}",
    )


def sandbox_report(run: SandboxRun) -> bytes:
    return json.dumps(
        {
            "isolation": run.isolation,
            "exit_code": run.exit_code,
            "limit": run.limit,
            "wall_ms": round(run.wall_ms, 1),
            "output_bytes": run.output_bytes,
            "output": run.output.decode("utf-8", "replace"),
            "records": run.records,
            "traced": [effect.as_record() for effect in run.trace.effects[:1000]] if run.trace is not None else None,
        },
        indent=1,
    ).encode()


# The sandbox's events in the capability vocabulary of GuardDog's CAPABILITY_RULES (one vocabulary for
# reviews/capabilities.py): a file read or write, a process start; network, environment and
# dynamic-code keep their names.
OBSERVED_AS = {"subprocess": "process-spawn"}
OBSERVED_LIMIT = 100  # targets kept per capability in the summary; the report keeps every event


def observed_capability(event: Mapping[str, Any]) -> str:
    kind = str(event.get("kind", ""))
    if kind == "file":
        return "filesystem-write" if event.get("access") == "write" else "filesystem-read"
    return OBSERVED_AS.get(kind, kind)


def observed_capabilities(events: list[dict]) -> dict[str, list[str]]:
    """Capability -> the targets the plugin reached (hosts, paths, commands, variables), declared
    or not: what the sandbox saw, for the capability matrix beside what plugin.toml declares."""
    seen: dict[str, set[str]] = {}
    for event in events:
        seen.setdefault(observed_capability(event), set()).add(str(event.get("target", ""))[:300])
    return {name: sorted(targets)[:OBSERVED_LIMIT] for name, targets in sorted(seen.items())}


SELF_CHECK_KINDS = ("file", "network:connect", "network:lookup", "subprocess", "dynamic-code", "environment")


def behaviour_findings(
    run: SandboxRun, permissions: Mapping[str, Any], *, ordinary: tuple[str, ...] = ()
) -> list[FindingData]:
    events, checked = _self_check_events(run)
    findings = [f for event in events if (f := _judge(event, permissions)) is not None]
    findings += [_truncated_finding(record["kind"]) for record in run.of_type("truncated")]
    if run.isolation == "none":
        findings.append(
            unisolated_finding(
                kind="behaviour",
                tool=TOOL,
                cwe="CWE-653",
                consequence="the plugin ran with no namespaces, so the host's files, network and processes were "
                "within its reach (as the sandbox user when the worker is root, else as the worker's user, with "
                "an empty environment). What it did is on record only as far as the audit hook saw it. Re-run on "
                "a worker with bubblewrap.",
            )
        )
    evaded = run.forged + _self_check(run, checked) + _unobserved(run, permissions, events, ordinary)
    findings += [_evaded_finding(what) for what in evaded]
    if run.tampered:
        findings.append(_tampered_finding(run))
    if run.limit:
        findings.append(_limit_finding(run))
    elif run.crash is not None:
        findings.append(_crash_finding(run.crash))
    elif run.result is None:
        findings.append(_exit_finding(run))
    return findings


def _self_check_events(run: SandboxRun) -> tuple[list[dict], list[dict]]:
    """The plugin's events, and those of the harness's end-of-run self-check (made from a file
    under the real plugin root, so that they are the plugin's to the hook)."""
    own = SELF_CHECK_FILE + run.canary
    events: list[dict] = []
    checked: list[dict] = []
    for event in run.of_type("event"):
        file = str((event.get("where") or {}).get("file", ""))
        mine = run.canary and (file == own or file.endswith("/" + own)) and run.canary in str(event.get("target"))
        (checked if mine else events).append(event)
    return events, checked


def _self_check(run: SandboxRun, checked: list[dict]) -> list[str]:
    """The harness ran its self-check through the hook's live handlers and compared the hook's
    state with what it was before the plugin's first line: each handler must have reported it
    from the plugin's code, and nothing may have changed. A kind the hook stopped recording
    (truncated) has its own finding."""
    if not run.canary or run.result is None:
        return []
    state = [r for r in run.of_type("canary") if r.get("nonce") == "state:" + run.canary]
    if not state:
        return ["the harness's end-of-run self-check of the audit hook went unrecorded"]
    found = []
    changed = state[-1].get("changed")
    if changed:
        names = ", ".join(str(name) for name in changed) if isinstance(changed, list) else str(changed)
        found.append(f"the plugin changed the audit hook's own state ({names})"[:250])
    truncated = {r.get("kind") for r in run.of_type("truncated")}
    seen = {str(e.get("kind")) + (f":{e['operation']}" if e.get("kind") == "network" else "") for e in checked}
    missing = [kind for kind in SELF_CHECK_KINDS if kind not in seen and kind.partition(":")[0] not in truncated]
    if missing:
        found.append(
            "the audit hook did not report its self-check from the plugin's code "
            f"({', '.join(missing)}): it had been blinded"
        )
    return found


def _unobserved(
    run: SandboxRun, permissions: Mapping[str, Any], events: list[dict], ordinary: tuple[str, ...]
) -> list[str]:
    """What the system-call tracer saw that the audit hook did not report (tracer.reconcile);
    without the tracer, only a hook that went quiet before the harness's end-of-run check."""
    if run.trace is not None:
        records = [r for r in run.records if r.get("type") != "event"] + events
        found = reconcile(run.trace, records, declared=_declared(permissions), canary=run.canary, ordinary=ordinary)
        if run.trace.truncated:
            found.append("the system-call trace passed its size limit: what followed was not checked")
        return found
    recorded = any(r.get("type") == "canary" and r.get("nonce") == run.canary for r in run.records)
    if run.canary and run.result is not None and not recorded:
        return ["the audit hook stopped reporting: the harness's end-of-run check went unrecorded"]
    return []


def _declared(permissions: Mapping[str, Any]):
    def declared(kind: str, target: str) -> bool:
        if kind == "exec":
            return bool(permissions["subprocess"])
        if kind in ("write", "read"):
            return path_declared(target, kind, permissions["filesystem"])
        if kind == "lookup":  # a name look-up: any declared host may need one
            return bool(permissions["network"])
        return network_declared(target, permissions["network"])  # connections, datagrams, bind, listen

    return declared


def _judge(event: dict, permissions: Mapping[str, Any]) -> FindingData | None:
    kind, target = event.get("kind"), str(event.get("target", ""))
    if kind == "network" and not network_declared(target, permissions["network"]):
        if event.get("operation") == "bind":
            return _finding(event, "undeclared-network", "high", f"Bound a socket to {target}, undeclared", "CWE-1327")
        return _finding(event, "undeclared-network", "high", f"Network access to {target} is not declared", "")
    if kind == "file":
        return _file_finding(event, target, permissions["filesystem"])
    if kind == "subprocess" and not permissions["subprocess"]:
        return _finding(event, "undeclared-subprocess", "high", f"Started a process: {target[:120]}", "CWE-78")
    if kind == "environment" and event.get("via") == "posix.environ":  # around os.environ, even if declared
        what = "the whole environment" if target == "*" else f"the variable {target}"
        return _finding(event, "environment-evasion", "high", f"Read {what} through posix.environ", "CWE-526")
    if kind == "environment" and target not in permissions["environment"]:
        if target == "*":
            return _finding(event, "environment-enumeration", "high", "Read the whole environment", "CWE-526")
        return _finding(event, "undeclared-environment", "medium", f"Read the undeclared variable {target}", "CWE-526")
    if kind == "dynamic-code" and event.get("via") == "dependency":
        return _finding(
            event,
            "dependency-generated-code",
            "medium",
            f"A dependency compiled code it generated: {target[:80]}",
            "CWE-95",
        )
    if kind == "dynamic-code":
        via = event.get("via", "")
        return _finding(event, "dynamic-code", "high", f"Ran dynamic code ({via}): {target[:80]}", "CWE-95")
    return None


def network_declared(target: str, patterns: list[str]) -> bool:
    """``host:port`` against plugin.toml's patterns (``*.acme.example:443``, ``api.example:*``);
    a look-up without a port matches any pattern of its host."""
    host, _, port = target.rpartition(":")
    for pattern in patterns:
        allowed_host, _, allowed_port = pattern.rpartition(":")
        if fnmatchcase(host.lower(), allowed_host.lower()) and (allowed_port == "*" or port in ("*", allowed_port)):
            return True
    return False


def path_declared(path: str, access: str, entries: list[str]) -> bool:
    """``path`` under an entry's root, both normalised (``/tmp/../etc`` is ``/etc``)."""
    path = posixpath.normpath(path)
    for entry in entries:
        mode, _, root = entry.partition(":")
        covers = mode == "write" or access == "read"
        root = posixpath.normpath(root) if root else "/"
        if covers and (path == root or path.startswith(root if root == "/" else root + "/")):
            return True
    return False


def _file_finding(event: dict, path: str, entries: list[str]) -> FindingData | None:
    access = event.get("access", "read")
    if path_declared(path, access, entries):
        return None
    if any(marker in path for marker in SENSITIVE) or path.startswith(SENSITIVE_FILES) or path.endswith("/environ"):
        return _finding(event, "credential-access", "critical", f"Tried to {access} {path}", "CWE-522")
    severity = "high" if access == "write" else "medium"
    return _finding(event, f"undeclared-file-{access}", severity, f"Undeclared file {access}: {path}", "CWE-552")


def _finding(event: dict, rule: str, severity: str, title: str, cwe: str) -> FindingData:
    where = event.get("where") or {}
    location = f" at {where.get('file')}:{where.get('line')} in {where.get('function')}()" if where else ""
    return FindingData(
        rule_id=f"behaviour.{rule}",
        title=title[:300],
        severity=severity,
        kind="behaviour",
        message=f"Observed in the sandbox during {event.get('phase', 'import')}{location}. "
        "Declare it in plugin.toml's [permissions] if the plugin needs it, or remove it.",
        path=str(where.get("file", "")),
        line=where.get("line") if isinstance(where.get("line"), int) else None,
        cwe=cwe,
        tool=TOOL,
        snippet=f"{event.get('kind')}:{event.get('access', '')}:{event.get('target', '')}"[:500],
        data={key: event[key] for key in ("kind", "target", "access", "operation", "via", "where") if key in event},
    )


def _evaded_finding(what: str) -> FindingData:
    return FindingData(
        rule_id="behaviour.capture-evaded",
        title=f"Capture evaded: {what}"[:300],
        severity="critical",
        kind="behaviour",
        message="What the plugin's process reported contradicts what was observed from outside it: "
        f"{what}. The in-process capture was silenced, bypassed or forged; nothing it reported can be "
        "relied on.",
        cwe="CWE-345",
        tool=TOOL,
        snippet=f"capture-evaded:{what}"[:500],
        data={"contradiction": what},
    )


def _truncated_finding(kind: str) -> FindingData:
    return FindingData(
        rule_id="behaviour.truncated",
        title=f"So much {kind} activity that the sandbox stopped recording it",
        severity="high",
        kind="behaviour",
        message="Past this many distinct events of one kind, what else the plugin did is not on record: "
        "a reviewer cannot rely on the capture.",
        tool=TOOL,
        snippet=f"truncated:{kind}",
        data={"kind": kind},
    )


def _tampered_finding(run: SandboxRun) -> FindingData:
    garbled = run.of_type("garbled")
    return FindingData(
        rule_id="behaviour.tampered-report",
        title="The plugin wrote to the sandbox's report channel",
        severity="critical",
        kind="behaviour",
        message=f"{len(garbled)} record(s) the harness did not write, first: {garbled[0]['text'][:200]!r}. "
        "Code that forges its own inspection cannot be trusted.",
        cwe="CWE-345",
        tool=TOOL,
        snippet="tampered-report",
        data={"records": [g["text"] for g in garbled[:5]]},
    )


def _limit_finding(run: SandboxRun) -> FindingData:
    return FindingData(
        rule_id="behaviour.resource-limit",
        title=f"Stopped by {run.limit_text}",
        severity="high",
        kind="behaviour",
        message=f"The plugin was stopped by {run.limit_text} ({run.limit}) after {run.wall_ms / 1000:.1f} s; "
        f"it printed {run.output_bytes} bytes. A plugin must start within the sandbox's limits.",
        cwe="CWE-400",
        tool=TOOL,
        snippet=f"limit:{run.limit}",
        data={"limit": run.limit, "exit_code": run.exit_code, "output_bytes": run.output_bytes},
    )


def _crash_finding(crash: dict) -> FindingData:
    where = crash.get("where") or {}
    return FindingData(
        rule_id="behaviour.crash",
        title=f"Crashed during {crash.get('phase')}: {crash.get('exception')}",
        severity="high",
        kind="behaviour",
        message=str(crash.get("message", ""))[:1000],
        path=str(where.get("file", "")),
        line=where.get("line") if isinstance(where.get("line"), int) else None,
        tool=TOOL,
        snippet=f"crash:{crash.get('exception')}",
        data={"crash": crash},
    )


def _exit_finding(run: SandboxRun) -> FindingData:
    return FindingData(
        rule_id="behaviour.exit",
        title=f"Exited before it finished loading (status {run.exit_code})",
        severity="high",
        kind="behaviour",
        message=run.output.decode("utf-8", "replace")[-1000:],
        tool=TOOL,
        snippet=f"exit:{run.exit_code}",
        data={"exit_code": run.exit_code},
    )
