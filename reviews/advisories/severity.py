"""The severity of an OSV advisory: the publisher's own label, else the band of the highest CVSS v3
base score it gives (computed here from the vector, by FIRST's specification), else "medium".
"""

from __future__ import annotations

import math
from collections.abc import Iterator

_GITHUB_SEVERITY = {"CRITICAL": "critical", "HIGH": "high", "MODERATE": "medium", "MEDIUM": "medium", "LOW": "low"}


def derive_severity(data: dict) -> str:
    """The publisher's own label wins (GitHub: CRITICAL/HIGH/MODERATE/LOW); else the band of
    the highest CVSS v3 base score given; else "medium", because no data is not "no risk"."""
    specific = data.get("database_specific")
    label = specific.get("severity") if isinstance(specific, dict) else None
    if isinstance(label, str) and label.strip().upper() in _GITHUB_SEVERITY:
        return _GITHUB_SEVERITY[label.strip().upper()]
    scores = [s for s in map(cvss3_base_score, _cvss3_vectors(data)) if s is not None]
    return severity_band(max(scores)) if scores else "medium"


def _cvss3_vectors(data: dict) -> Iterator[str]:
    """Top-level ``severity[]`` and, as the schema allows instead, ``affected[].severity[]``."""
    blocks = [data.get("severity")]
    affected = data.get("affected")
    if isinstance(affected, list):
        blocks += [entry.get("severity") for entry in affected if isinstance(entry, dict)]
    for block in blocks:
        for item in block if isinstance(block, list) else ():
            if isinstance(item, dict) and item.get("type") == "CVSS_V3" and isinstance(item.get("score"), str):
                yield item["score"]


def severity_band(score: float) -> str:
    """CVSS v3 qualitative bands; 0.0 ("none") reports as low, the lowest band Warden has."""
    if score >= 9.0:
        return "critical"
    if score >= 7.0:
        return "high"
    if score >= 4.0:
        return "medium"
    return "low"


_CVSS_WEIGHTS: dict[str, dict[str, float]] = {
    "AV": {"N": 0.85, "A": 0.62, "L": 0.55, "P": 0.2},
    "AC": {"L": 0.77, "H": 0.44},
    "UI": {"N": 0.85, "R": 0.62},
    "C": {"H": 0.56, "L": 0.22, "N": 0.0},
    "I": {"H": 0.56, "L": 0.22, "N": 0.0},
    "A": {"H": 0.56, "L": 0.22, "N": 0.0},
}
_CVSS_PRIVILEGES = {"U": {"N": 0.85, "L": 0.62, "H": 0.27}, "C": {"N": 0.85, "L": 0.68, "H": 0.5}}


def cvss3_base_score(vector: str) -> float | None:
    """The CVSS 3.0/3.1 base score (FIRST specification, section 7.1), or None for a vector
    that is not v3 or lacks a base metric: a bad vector must not invent a severity."""
    prefix, _, rest = vector.strip().partition("/")
    if prefix not in ("CVSS:3.0", "CVSS:3.1"):
        return None
    metrics = dict(part.split(":", 1) for part in rest.split("/") if ":" in part)
    try:
        scope = metrics["S"]
        weight = {key: table[metrics[key]] for key, table in _CVSS_WEIGHTS.items()}
        privileges = _CVSS_PRIVILEGES[scope][metrics["PR"]]
    except KeyError:
        return None
    iss = 1 - (1 - weight["C"]) * (1 - weight["I"]) * (1 - weight["A"])
    impact = 6.42 * iss if scope == "U" else 7.52 * (iss - 0.029) - 3.25 * (iss - 0.02) ** 15
    exploitability = 8.22 * weight["AV"] * weight["AC"] * privileges * weight["UI"]
    if impact <= 0:
        return 0.0
    total = impact + exploitability if scope == "U" else 1.08 * (impact + exploitability)
    return _round_up(min(total, 10.0))


def _round_up(value: float) -> float:
    """CVSS 3.1 Appendix A "Roundup": one decimal, upwards, immune to float noise like 4.000000001."""
    as_int = round(value * 100_000)
    if as_int % 10_000 == 0:
        return as_int / 100_000.0
    return (math.floor(as_int / 10_000) + 1) / 10.0
