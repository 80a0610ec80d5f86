"""The rubric's factors and the rating itself: a pure function of a fact document and a rubric.

Every number is a ``Decimal`` rounded to hundredths and stored as text, and every list is in a
fixed order, so the same facts under the same rubric version give the same payload, byte for
byte, on any machine and any database (docs/rubric.md).
"""

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

from governance.errors import ValidationFailed

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
HUNDRED = Decimal("100.00")
# A weight is points per unit and a cap at most 100 points: beyond these a factor is no
# longer a weight but a veto (a policy's job), and huge numbers overflow Decimal when rating.
WEIGHT_RANGE = (-HUNDRED, HUNDRED)
CAP_RANGE = (ZERO, HUNDRED)
BAND_ORDER = ("low", "medium", "high", "critical")
SEVERITIES = ("critical", "high", "medium", "low")
CRITICALITIES = ("high", "medium", "low")
RESIDUAL_LEVELS = {"none": 0, "low": 0, "medium": 1, "high": 2}
TOP_CONCERNS = 5


def money(value: object) -> Decimal:
    """A number as a Decimal rounded to hundredths (floats go through ``repr``, never binary)."""
    return Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_EVEN)


@dataclass(frozen=True)
class Factor:
    key: str
    label: str
    unit: str
    read: Callable[[dict], tuple[Decimal, dict]]  # facts -> (units, the inputs shown)
    mitigation: str


def _findings(kind: str, severity: str) -> Callable[[dict], tuple[Decimal, dict]]:
    def read(facts: dict) -> tuple[Decimal, dict]:
        count = facts["findings"]["by_kind"].get(kind, {}).get(severity, 0)
        exempted = facts["findings"]["exempted_by_kind"].get(kind, {}).get(severity, 0)
        return Decimal(count), {"open": count, "exempted": exempted}

    return read


def _capabilities(facts: dict) -> tuple[Decimal, dict]:
    undeclared = facts["capabilities"]["undeclared"]
    return Decimal(len(undeclared)), {"undeclared": undeclared}


def _budget_breaches(facts: dict) -> tuple[Decimal, dict]:
    performance = facts["performance"]
    breached = sorted(k for k, kpi in performance["kpis"].items() if kpi["within_budget"] is False)
    return Decimal(len(breached)), {"measured": performance["measured"], "breached": breached}


def _regression(facts: dict) -> tuple[Decimal, dict]:
    performance = facts["performance"]
    worst = money(performance["max_regression_percent"])
    return worst, {"measured": performance["measured"], "regressed": performance["regressed"], "worst": str(worst)}


def _violations(severity: str) -> Callable[[dict], tuple[Decimal, dict]]:
    def read(facts: dict) -> tuple[Decimal, dict]:
        violated = facts["policies"]["violated"].get(severity, [])
        return Decimal(len(violated)), {"violated": violated}

    return read


def _controls(criticality: str) -> Callable[[dict], tuple[Decimal, dict]]:
    def read(facts: dict) -> tuple[Decimal, dict]:
        not_met = facts["compliance"]["not_met"].get(criticality, 0)
        partly = facts["compliance"]["partially_met"].get(criticality, 0)
        return money(not_met + Decimal(partly) / 2), {"not_met": not_met, "partially_met": partly}

    return read


def _residual(facts: dict) -> tuple[Decimal, dict]:
    level = facts["compliance"]["residual_risk"]
    return Decimal(RESIDUAL_LEVELS.get(level, 0)), {"residual_risk": level}


def _credits(facts: dict) -> tuple[Decimal, dict]:
    controls = facts["exemptions"]["compensating_controls"]
    return Decimal(len(controls)), {"controls": controls}


FINDING_KINDS = {
    "security": ("security finding", "Fix it, or triage it as a false positive with a reason."),
    "behaviour": ("sandbox behaviour", "Remove the behaviour, or declare and justify it in the manifest."),
    "dependency": ("vulnerable dependency", "Pin a fixed release of the dependency."),
}
FACTORS: tuple[Factor, ...] = (
    *(
        Factor(
            f"{kind}_findings.{severity}",
            f"Open {label}s: {severity}",
            "finding",
            _findings(kind, severity),
            mitigation,
        )
        for kind, (label, mitigation) in FINDING_KINDS.items()
        for severity in SEVERITIES
    ),
    Factor(
        "undeclared_capabilities",
        "Undeclared capabilities",
        "capability",
        _capabilities,
        "Declare the capability in plugin.toml [permissions] or remove the code that uses it.",
    ),
    Factor(
        "performance.budget_breaches",
        "Performance budgets breached",
        "KPI",
        _budget_breaches,
        "Bring the KPI within the host platform's budget (profile start-up, memory and latency).",
    ),
    Factor(
        "performance.regression_percent",
        "Worst regression against the last approved version",
        "percent",
        _regression,
        "Find the change that slowed it down; compare with the last approved version's profile.",
    ),
    *(
        Factor(
            f"policy_violations.{severity}",
            f"Policy violations: {severity}",
            "policy",
            _violations(severity),
            "Meet the policy, or ask the approval board for a time-limited exemption.",
        )
        for severity in SEVERITIES
    ),
    *(
        Factor(
            f"compliance_not_met.{criticality}",
            f"Compliance controls not met: {criticality} criticality",
            "control",
            _controls(criticality),
            "Provide evidence for the control or change the plugin so that it meets it.",
        )
        for criticality in CRITICALITIES
    ),
    Factor(
        "residual_risk",
        "Residual risk accepted at compliance sign-off",
        "level",
        _residual,
        "Reduce what the compliance officer left open; a new sign-off records the lower residual risk.",
    ),
    Factor(
        "compensating_controls",
        "Documented compensating controls (credit)",
        "control",
        _credits,
        "",
    ),
)
FACTOR_KEYS = tuple(f.key for f in FACTORS)


@dataclass(frozen=True)
class Rating:
    """What ``rate`` returns; ``payload`` is what is hashed and compared."""

    breakdown: list[dict]
    total: Decimal
    band: str
    summary: str
    digest: str

    @property
    def payload(self) -> dict:
        return {"breakdown": self.breakdown, "total": str(self.total), "band": self.band, "summary": self.summary}


def rate(*, facts: dict, rubric: dict, rubric_label: str) -> Rating:
    """Rate one fact document under one (validated) rubric document."""
    rows = [_contribution(factor, facts, rubric["factors"].get(factor.key, {})) for factor in FACTORS]
    total = min(max(sum((Decimal(r["contribution"]) for r in rows), ZERO), ZERO), HUNDRED).quantize(CENT)
    band = band_of(total, rubric["bands"])
    summary = _summary(rows, total, band, rubric_label)
    payload = {"rubric": rubric_label, "breakdown": rows, "total": str(total), "band": band, "summary": summary}
    return Rating(breakdown=rows, total=total, band=band, summary=summary, digest=digest_of(payload))


def _contribution(factor: Factor, facts: dict, setting: dict) -> dict:
    units, inputs = factor.read(facts)
    weight, cap = money(setting.get("weight", 0)), money(setting.get("cap", 0))
    raw = (units * weight).quantize(CENT, rounding=ROUND_HALF_EVEN)
    bounded = min(abs(raw), cap)
    contribution = bounded if raw >= 0 else -bounded
    return {
        "factor": factor.key,
        "label": factor.label,
        "unit": factor.unit,
        "inputs": inputs,
        "units": str(units),
        "weight": str(weight),
        "cap": str(cap),
        "raw": str(raw),
        "contribution": str(contribution.quantize(CENT)),
        "cap_hit": abs(raw) > cap,
        "mitigation": setting.get("mitigation") or factor.mitigation,
    }


def band_of(total: Decimal, bands: dict) -> str:
    band = "low"
    for name in BAND_ORDER[1:]:
        if total >= money(bands[name]):
            band = name
    return band


def _summary(rows: list[dict], total: Decimal, band: str, rubric_label: str) -> str:
    concerns = sorted(
        (r for r in rows if Decimal(r["contribution"]) > 0), key=lambda r: (-Decimal(r["contribution"]), r["factor"])
    )
    lines = [f"Risk {total} of 100: {band} (rubric {rubric_label})."]
    if not concerns:
        lines.append("No concerns: no factor adds to the score.")
    for number, row in enumerate(concerns[:TOP_CONCERNS], start=1):
        capped = ", capped" if row["cap_hit"] else ""
        lines.append(
            f"{number}. {row['label']}: {row['units']} {row['unit']}(s), +{row['contribution']}{capped}. "
            f"Mitigation: {row['mitigation']}"
        )
    if len(concerns) > TOP_CONCERNS:
        lines.append(f"…and {len(concerns) - TOP_CONCERNS} smaller concerns (see the breakdown).")
    credits = [r for r in rows if Decimal(r["contribution"]) < 0]
    for row in credits:
        lines.append(f"Credit: {row['label']}: {row['units']} {row['unit']}(s), {row['contribution']}.")
    return "\n".join(lines)


def as_stored(value: object) -> object:
    """``value`` as a JSON column gives it back. PostgreSQL's jsonb keeps numbers as numeric,
    which has no negative zero (-0.0 comes back 0.0) and writes a float of 1e16 or more as
    the integer it is; a document digested before it was stored must already be in that form,
    or its stored copy digests differently (a performance change of round(-0.04, 1) did that,
    and every approval of the version was then refused as "facts changed")."""
    if isinstance(value, float):
        if value == 0:
            return 0.0
        if value.is_integer() and abs(value) >= 1e16:
            return int(value)
        return value
    if isinstance(value, dict):
        return {key: as_stored(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [as_stored(item) for item in value]
    return value


def canonical_json(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def digest_of(value: object) -> str:
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()


# -- the rubric document -----------------------------------------------------------------


def validated_rubric(document: object) -> dict:
    """A rubric document with every number checked and normalised, or ValidationFailed
    listing each problem. Unknown factors are refused; a missing factor weighs nothing."""
    if not isinstance(document, dict) or not isinstance(document.get("factors"), dict):
        raise ValidationFailed("A rubric needs factors and bands.", code="invalid_rubric")
    errors: list[dict] = []
    factors = {}
    for key, setting in sorted(document["factors"].items()):
        where = f"factors.{key}"
        if key not in FACTOR_KEYS:
            errors.append({"field": where, "code": "unknown_factor", "message": f"Known: {', '.join(FACTOR_KEYS)}."})
            continue
        if not isinstance(setting, dict):
            errors.append({"field": where, "code": "invalid", "message": "Needs weight and cap."})
            continue
        weight, cap = (
            _number(setting.get("weight"), f"{where}.weight", errors),
            _number(setting.get("cap"), f"{where}.cap", errors),
        )
        if weight is not None and not WEIGHT_RANGE[0] <= weight <= WEIGHT_RANGE[1]:
            errors.append({"field": f"{where}.weight", "code": "invalid", "message": "Between -100 and 100 points."})
        if cap is not None and not CAP_RANGE[0] <= cap <= CAP_RANGE[1]:
            errors.append({"field": f"{where}.cap", "code": "invalid", "message": "Between 0 and 100 points."})
        factors[key] = {"weight": str(weight), "cap": str(cap)}
        if setting.get("mitigation"):
            factors[key]["mitigation"] = str(setting["mitigation"])
    bands = _bands(document.get("bands"), errors)
    if errors:
        raise ValidationFailed("The rubric is invalid.", code="invalid_rubric", errors=errors)
    return {"factors": factors, "bands": bands}


def _number(value: object, where: str, errors: list[dict]) -> Decimal | None:
    try:
        if isinstance(value, bool) or value is None:
            raise InvalidOperation
        number = money(value)
        if not number.is_finite():
            raise InvalidOperation
        return number
    except (InvalidOperation, ValueError):
        errors.append({"field": where, "code": "invalid", "message": "A number."})
        return None


def _bands(raw: object, errors: list[dict]) -> dict:
    if not isinstance(raw, dict) or set(raw) != set(BAND_ORDER[1:]):
        errors.append({"field": "bands", "code": "invalid", "message": "medium, high and critical thresholds."})
        return {}
    bands = {name: _number(raw[name], f"bands.{name}", errors) for name in BAND_ORDER[1:]}
    values = list(bands.values())
    if None not in values and not (ZERO < values[0] < values[1] < values[2] <= HUNDRED):  # type: ignore[operator]
        errors.append({"field": "bands", "code": "invalid", "message": "0 < medium < high < critical ≤ 100."})
    return {name: str(value) for name, value in bands.items()}


def rubric_diff(old: dict | None, new: dict) -> list[dict]:
    """What changed between two rubric documents, factor by factor and band by band."""
    old = old or {"factors": {}, "bands": {}}
    changes = []
    for section in ("factors", "bands"):
        for key in sorted(set(old.get(section, {})) | set(new.get(section, {}))):
            before, after = old.get(section, {}).get(key), new.get(section, {}).get(key)
            if before != after:
                changes.append({"what": f"{section}.{key}", "before": before, "after": after})
    return changes


def _per_severity(prefix: str, *weights_and_caps: float) -> dict:
    pairs = zip(weights_and_caps[::2], weights_and_caps[1::2], strict=True)
    return {f"{prefix}.{s}": {"weight": w, "cap": c} for s, (w, c) in zip(SEVERITIES, pairs, strict=True)}


# The demo's rubric; docs/rubric.md gives the reasoning for each number.
DEFAULT_RUBRIC = {
    "factors": {
        **_per_severity("security_findings", 25, 50, 10, 30, 3, 12, 1, 4),
        **_per_severity("behaviour_findings", 25, 50, 12, 36, 4, 12, 1, 4),
        **_per_severity("dependency_findings", 15, 30, 8, 24, 2, 8, 0.5, 2),
        "undeclared_capabilities": {"weight": 10, "cap": 30},
        "performance.budget_breaches": {"weight": 5, "cap": 15},
        "performance.regression_percent": {"weight": 0.25, "cap": 10},
        **_per_severity("policy_violations", 20, 40, 10, 20, 4, 12, 1, 3),
        "compliance_not_met.high": {"weight": 8, "cap": 24},
        "compliance_not_met.medium": {"weight": 4, "cap": 12},
        "compliance_not_met.low": {"weight": 1, "cap": 4},
        "residual_risk": {"weight": 6, "cap": 12},
        "compensating_controls": {"weight": -2, "cap": 10},
    },
    "bands": {"medium": 15, "high": 40, "critical": 70},
}
