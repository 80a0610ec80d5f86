"""Policies as code: YAML files in ``policies/``, CEL expressions over a version's facts.

1. ``policy_files_load`` reads and validates every file of a directory; one bad file (YAML,
   a missing field, a CEL syntax error with the compiler's message) refuses the whole load.
2. ``policies_sync`` (``manage.py sync_policies``) stores what changed as new policy versions
   and retires the policies whose file is gone, each with an audit row.
3. ``evaluate`` runs compiled policies against one fact document. A policy complies when its
   expression is true; anything else is a violation, or an error when it could not be
   evaluated (an enforce-mode error blocks, like a violation: the gate fails closed).

Expressions are parsed once, with the same cel-python environment the compliance controls
use, and run through cel-python's transpiler (Python code, several times faster than its
tree interpreter). Where the transpiled program errs, the interpreter, which follows the CEL
specification (``x == null || x.y`` absorbs the error), decides.
"""

import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import overload

import celpy
import lark
import yaml
from celpy.adapter import JSON
from celpy.evaluation import Activation, CELEvalError, TranspilerTree
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone
from django_q.tasks import async_task

from decisions.models import Policy, PolicyMode, PolicySeverity, RetroHuntAction
from governance.cel import compile_expression
from governance.errors import ValidationFailed
from governance.text import yaml_load
from governance.transitions import save_with_audit

from .rubric import digest_of

FIELDS = ("key", "title", "severity", "mode", "message", "expression", "description", "retro_hunt")
# Fields added after policies were first stored, with their default: a field at its default is
# left out of the content digest, so adding one never makes a new version of an unchanged file.
DEFAULTS = {"retro_hunt": RetroHuntAction.FLAG}
REQUIRED = ("key", "title", "severity", "mode", "message", "expression")
KEY = re.compile(r"^[a-z0-9][a-z0-9-]{0,79}$")
READS_RATING = re.compile(r"\brating\b")
# The facts that check runs produce: a policy over them cannot comply while a check has not judged.
READS_CHECK_RESULTS = re.compile(r"\b(checks|findings|capabilities|performance|escalation)\b")


@dataclass(frozen=True)
class CompiledPolicy:
    key: str
    version: int
    title: str
    severity: str
    mode: str
    message: str
    reads_rating: bool
    reads_check_results: bool
    exact: celpy.Runner
    fast: celpy.CompiledRunner | None

    def check(self, facts: "PreparedFacts") -> tuple[bool | None, str]:
        """(complies, error): ``complies`` is None when the expression has no boolean value."""
        if self.fast is not None:
            try:
                value = _run_transpiled(self.fast, facts.activation(self.fast))
            except Exception:  # noqa: S110 - the interpreter below decides, and reports the error
                pass
            else:
                if isinstance(value, bool | celpy.celtypes.BoolType):
                    return bool(value), ""
        try:
            value = self.exact.evaluate(facts.context)
        except Exception as exc:  # celpy raises its own evaluation errors
            return None, str(exc.args[0] if exc.args else exc)[:300]
        if not isinstance(value, bool | celpy.celtypes.BoolType):
            return None, f"The expression gave {type(value).__name__} {value!r}, not true or false."
        return bool(value), ""


class PreparedFacts:
    """A fact document converted to CEL values once, with one activation that every
    transpiled program of the evaluation shares (cel-python would build one per program)."""

    def __init__(self, facts: Mapping) -> None:
        self.context = {name: celpy.json_to_cel(value) for name, value in facts.items()}
        self._activation: Activation | None = None

    def set(self, name: str, value: JSON) -> None:
        self.context[name] = celpy.json_to_cel(value)
        if self._activation is not None:
            self._activation.identifiers.load_values({name: self.context[name]})

    def activation(self, runner: celpy.CompiledRunner) -> Activation:
        if self._activation is None:
            self._activation = runner.tp.base_activation.clone()
            self._activation.identifiers.load_values(self.context)
        return self._activation


_NAMESPACE_LOCK = threading.Lock()


def _run_transpiled(runner: celpy.CompiledRunner, activation: Activation) -> celpy.celtypes.Value:
    """What ``CompiledRunner.evaluate`` does, on an activation built once per fact document.
    The transpiled code reads ``base_activation`` from, and leaves ``CEL`` in, celpy.evaluation's
    module namespace, so threads take turns (cel-python itself does not)."""
    namespace = celpy.evaluation.result.__globals__
    with _NAMESPACE_LOCK:
        namespace["base_activation"] = activation
        exec(runner.tp.executable_code, namespace)  # noqa: S102 - Python that cel-python compiled from the CEL
        value = namespace["CEL"]
    if isinstance(value, CELEvalError):
        raise value
    return value


def compile_policy(
    *, key: str, version: int, title: str, severity: str, mode: str, message: str, expression: str
) -> CompiledPolicy:
    exact = compile_expression(expression)  # ValidationFailed with the compiler's message
    try:
        fast: celpy.CompiledRunner | None = celpy.CompiledRunner(exact.environment, _transpiler_tree(exact.ast))
    except Exception:  # a construct the transpiler does not support: the interpreter runs it
        fast = None
    return CompiledPolicy(
        key,
        version,
        title,
        severity,
        mode,
        message,
        bool(READS_RATING.search(expression)),
        bool(READS_CHECK_RESULTS.search(expression)),
        exact,
        fast,
    )


@overload
def _transpiler_tree(node: lark.Tree) -> TranspilerTree: ...
@overload
def _transpiler_tree(node: lark.Token) -> lark.Token: ...


def _transpiler_tree(node: lark.Tree | lark.Token) -> TranspilerTree | lark.Token:
    """The shared parser builds plain lark trees; the transpiler needs its own node class."""
    if isinstance(node, lark.Tree):
        return TranspilerTree(node.data, [_transpiler_tree(child) for child in node.children], node.meta)
    return node


def evaluate(
    policies: Iterable[CompiledPolicy],
    facts: PreparedFacts,
    exempt: Mapping[str, int],
    unfinished: Sequence[str] = (),
) -> list[dict]:
    """One row per policy: ``outcome`` is pass, violation, exempted (a violation an active
    exemption covers: shown, not counted) or error; ``blocks`` when it stops approval.

    A check that has not judged the version (``unfinished``: not run, queued, running,
    errored) is not a check that passed: a policy over check results that would comply is a
    violation until every check has finished, and says which ones it waits for."""
    rows = []
    for policy in policies:
        complies, error = policy.check(facts)
        if complies and unfinished and policy.reads_check_results:
            complies, error = False, "Not every check has judged the version: " + ", ".join(unfinished) + "."
        outcome = "pass" if complies else ("error" if complies is None else "violation")
        exemption = exempt.get(policy.key) if outcome != "pass" else None
        if exemption is not None:
            outcome = "exempted"
        rows.append(
            {
                "key": policy.key,
                "version": policy.version,
                "title": policy.title,
                "severity": policy.severity,
                "mode": policy.mode,
                "outcome": outcome,
                "message": policy.message if outcome != "pass" else "",
                "error": error,
                "exemption": exemption,
                "blocks": policy.mode == PolicyMode.ENFORCE and outcome in ("violation", "error"),
            }
        )
    return rows


_compiled: dict[tuple[int, str], CompiledPolicy] = {}


def current_policies() -> list[CompiledPolicy]:
    """The current policies that are not off, compiled once per stored version (one query)."""
    policies = []
    for row in Policy.objects.filter(is_current=True).exclude(mode=PolicyMode.OFF).order_by("key"):
        cache_key = (row.pk, row.content_digest)
        if cache_key not in _compiled:
            _compiled[cache_key] = compile_policy(
                key=row.key,
                version=row.version,
                title=row.title,
                severity=row.severity,
                mode=row.mode,
                message=row.message,
                expression=row.expression,
            )
        policies.append(_compiled[cache_key])
    return policies


# -- files -------------------------------------------------------------------------------


def policy_files_load(*, directory: Path) -> list[dict]:
    """Every ``*.yaml``/``*.yml`` file of ``directory``, validated; one bad file refuses all."""
    if not directory.is_dir():
        raise ValidationFailed(f"{directory} is not a directory of policy files.", code="invalid_policy")
    documents, errors = [], []
    for path in sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")]):
        try:
            documents.append(policy_document(path.read_text(encoding="utf-8"), source=path.name))
        except ValidationFailed as exc:
            errors.extend(exc.errors or [{"field": path.name, "code": exc.code, "message": exc.detail}])
        except (OSError, UnicodeDecodeError) as exc:
            errors.append({"field": path.name, "code": "unreadable", "message": str(exc)})
    keys = [d["key"] for d in documents]
    for key in sorted({k for k in keys if keys.count(k) > 1}):
        errors.append({"field": key, "code": "duplicate_key", "message": f"More than one file defines {key!r}."})
    if errors:
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        raise ValidationFailed(f"Policies refused, nothing was loaded. {detail}", code="invalid_policy", errors=errors)
    return documents


def policy_document(text: str, *, source: str) -> dict:
    """One policy file's content, checked field by field and compiled."""

    def refuse(message: str, code: str = "invalid_policy") -> ValidationFailed:
        return ValidationFailed(
            f"{source}: {message}", code=code, errors=[{"field": source, "code": code, "message": message}]
        )

    try:
        raw = yaml_load(text)
    except yaml.YAMLError as exc:
        raise refuse(f"not valid YAML: {exc}", "invalid_yaml") from None
    if not isinstance(raw, dict):
        raise refuse("a policy file holds one mapping with " + ", ".join(REQUIRED) + ".")
    unknown = sorted(set(map(str, raw)) - set(FIELDS))
    missing = [f for f in REQUIRED if not isinstance(raw.get(f), str) or not raw[f].strip()]
    if unknown or missing:
        raise refuse("; ".join(filter(None, [_listed("missing", missing), _listed("unknown fields", unknown)])))
    document = {field: str(raw.get(field, DEFAULTS.get(field, ""))).strip() for field in FIELDS}
    if not KEY.match(document["key"]):
        raise refuse(f"key {document['key']!r}: lowercase letters, digits and '-'.")
    if document["severity"] not in PolicySeverity.values:
        raise refuse(f"severity {document['severity']!r}: one of {', '.join(PolicySeverity.values)}.")
    if document["mode"] not in PolicyMode.values:
        raise refuse(f"mode {document['mode']!r}: one of {', '.join(PolicyMode.values)}.")
    if document["retro_hunt"] not in RetroHuntAction.values:
        raise refuse(f"retro_hunt {document['retro_hunt']!r}: one of {', '.join(RetroHuntAction.values)}.")
    try:
        compile_expression(document["expression"])
    except ValidationFailed as exc:
        raise refuse(f"expression does not compile: {exc.detail}", "invalid_expression") from None
    return {**document, "source": source}


def _listed(label: str, names: Sequence[str]) -> str:
    return f"{label}: {', '.join(names)}" if names else ""


@dataclass(frozen=True)
class SyncReport:
    created: list[str]
    retired: list[str]
    unchanged: list[str]


def policies_sync(*, documents: list[dict], actor: User | None = None, dry_run: bool = False) -> SyncReport:
    """Make the current policies match ``documents`` (from ``policy_files_load``)."""
    created, retired, unchanged = [], [], []
    with transaction.atomic(durable=True):
        current = {p.key: p for p in Policy.objects.select_for_update().filter(is_current=True)}
        for document in documents:
            digest = content_digest(document)
            existing = current.pop(document["key"], None)
            if existing is not None and existing.content_digest == digest:
                unchanged.append(str(existing))
                continue
            number = _next_version(document["key"])
            created.append(f"{document['key']} v{number}")
            if dry_run:
                continue
            if existing is not None:
                _retire(existing, actor, reason=f"Superseded by v{number}.")
            policy = Policy(
                **{f: document[f] for f in FIELDS}, version=number, source=document["source"], content_digest=digest
            )
            save_with_audit(
                policy, actor=actor, action="policy.load", data={"source": document["source"], "mode": policy.mode}
            )
        for gone in current.values():
            retired.append(str(gone))
            if not dry_run:
                _retire(gone, actor, reason="Its file was removed.")
        if (created or retired) and not dry_run:
            changed = ", ".join([*created, *(f"{name} retired" for name in retired)])
            transaction.on_commit(
                lambda: async_task(
                    "decisions.tasks.retro_hunt", f"policies changed: {changed}"[:300], task_name="retro-hunt"
                )
            )
    return SyncReport(created=created, retired=retired, unchanged=unchanged)


def content_digest(document: dict) -> str:
    return digest_of({f: document[f] for f in FIELDS if f not in DEFAULTS or document[f] != DEFAULTS[f]})


def _next_version(key: str) -> int:
    highest = Policy.objects.filter(key=key).order_by("-version").values_list("version", flat=True).first()
    return (highest or 0) + 1


def _retire(policy: Policy, actor: User | None, *, reason: str) -> None:
    policy.is_current, policy.retired_at = False, timezone.now()
    save_with_audit(policy, actor=actor, action="policy.retire", reason=reason)
