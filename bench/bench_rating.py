"""Benchmark: rate 10,000 versions and evaluate 50 policies on each; goal under 10 ms a version.

    .venv/bin/python bench/bench_rating.py [--versions N]

What is timed is ``assess_facts``, the work every transition, approval and gate call does once
its fact document is loaded: evaluating the policies that do not read the rating, rating
(24 factors, Decimal arithmetic, summary, SHA-256 digest), then the policies that do. The
policies are the 8 shipped in ``policies/`` plus 42 generated in the same shapes (counts,
``size()``, ``in``, ``has()``, macros over maps, arithmetic, the rating). Fact documents are
synthetic but shaped like real ones, with varied findings, KPIs and compliance results.

Baseline, same run: the same policies through cel-python's tree interpreter alone (its default
runner; the compliance controls use it), on the first tenth of the versions. Exits 1 when
Warden takes 10 ms a version or more.
"""

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.update(
    {"DJANGO_SETTINGS_MODULE": "config.settings.base", "WARDEN_VAR_DIR": tempfile.mkdtemp(prefix="warden-bench-")}
)

import django  # noqa: E402

django.setup()

from dataclasses import replace  # noqa: E402

from decisions.policies import compile_policy, policy_files_load  # noqa: E402
from decisions.rubric import DEFAULT_RUBRIC, SEVERITIES, rate, validated_rubric  # noqa: E402
from decisions.services import assess_facts  # noqa: E402

LIMIT_MS = 10.0
POLICIES = 50
KINDS = ("eligibility", "security", "capability", "behaviour", "dependency", "quality", "performance")
SHAPES = (
    "findings.by_kind.{kind}.{severity} <= {n}",
    "findings.open.critical + findings.open.high < {n}",
    "size(capabilities.undeclared) <= {small}",
    '!("{cap}" in capabilities.undeclared)',
    "!performance.measured || performance.budget_breaches <= {small}",
    "performance.max_regression_percent <= {pct}.0",
    "performance.kpis.all(k, !performance.kpis[k].regressed || performance.kpis[k].change_percent < {pct}.0)",
    'compliance.residual_risk != "high" && compliance.not_met.high <= {small}',
    "manifest.data.retention_days <= {days}",
    '!("pii" in manifest.data.categories) || manifest.data.encryption_at_rest',
    'manifest.permissions.subprocess == false || "subprocess" in exemptions.policies',
    "size(manifest.permissions.network) <= {small}",
    'has(manifest.docs.runbook) || version.category != "{category}"',
    "rating.total < {score}.0",
    'rating.band != "critical" || size(exemptions.policies) > 0',
)


def policies(rng: random.Random) -> list:
    shipped = policy_files_load(directory=ROOT / "policies")
    documents = [{k: d[k] for k in ("key", "title", "severity", "mode", "message", "expression")} for d in shipped]
    while len(documents) < POLICIES:
        shape = SHAPES[len(documents) % len(SHAPES)]
        expression = shape.format(
            kind=rng.choice(KINDS[1:5]),
            severity=rng.choice(SEVERITIES),
            n=rng.randint(1, 4),
            small=rng.randint(0, 2),
            cap=rng.choice(["network", "subprocess", "environment"]),
            pct=rng.choice([10, 20, 50]),
            days=rng.choice([90, 365]),
            category=rng.choice(["data-connector", "reporting"]),
            score=rng.choice([40, 60, 70]),
        )
        documents.append(
            {
                "key": f"generated-{len(documents)}",
                "title": expression,
                "severity": rng.choice(SEVERITIES),
                "mode": rng.choice(["log", "enforce"]),
                "message": "generated",
                "expression": expression,
            }
        )
    return [compile_policy(version=1, **document) for document in documents]


def facts(rng: random.Random, number: int) -> dict:
    def counts() -> dict:  # most versions have a few low findings, some a serious one
        odds = {"critical": 0.01, "high": 0.04, "medium": 0.15, "low": 0.3, "info": 0.3}
        return {s: 1 + int(rng.expovariate(1.0)) if rng.random() < p else 0 for s, p in odds.items()}

    by_kind = {kind: counts() for kind in KINDS}
    measured = rng.random() < 0.8
    kpis = {}
    for name in ("startup_ms", "peak_rss_mb", "cpu_ms", "latency_p95_ms@1", "latency_p95_ms@8", "throughput_rps@8"):
        if measured:
            change = round(rng.gauss(0, 8), 2)
            kpis[name] = {
                "value": round(rng.uniform(1, 900), 3),
                "unit": "ms",
                "budget": 500.0,
                "within_budget": rng.random() < 0.97,
                "change_percent": change,
                "regressed": change > 10,
            }
    regressed = sorted(k for k, v in kpis.items() if v["regressed"])
    criticality = ("high", "medium", "low")
    return {
        "version": {
            "id": number,
            "plugin": f"plugin-{number % 700}",
            "organisation": f"org-{number % 90}",
            "category": rng.choice(["data-connector", "reporting"]),
            "number": f"1.{number}.0",
            "status": "awaiting_decision",
        },
        "manifest": {
            "plugin": {"name": f"plugin-{number % 700}", "category": "data-connector", "license": "MIT"},
            "permissions": {
                "network": ["api.example:443"] * rng.randint(0, 1),
                "filesystem": ["write:/tmp"],
                "subprocess": rng.random() < 0.1,
                "environment": [],
            },
            "data": {
                "categories": rng.choice([["usage"], ["pii", "usage"]]),
                "residency": ["eu"],
                "encryption_in_transit": True,
                "encryption_at_rest": rng.random() < 0.9,
                "retention_days": rng.choice([30, 30, 90, 400]),
            },
            "dependencies": {"requirements": ["requests==2.31.0"]},
            "docs": {"usage": "docs/USAGE.md", **({"runbook": "docs/RUNBOOK.md"} if rng.random() < 0.7 else {})},
        },
        "checks": {"security.bandit": "succeeded", "security.guarddog": "failed", "performance.harness": "succeeded"},
        "findings": {
            "open": {s: sum(by_kind[k][s] for k in KINDS) for s in (*SEVERITIES, "info")},
            "by_kind": by_kind,
            "exempted": 0,
            "exempted_by_kind": {kind: dict.fromkeys((*SEVERITIES, "info"), 0) for kind in KINDS},
        },
        "capabilities": {"undeclared": ["network"] if rng.random() < 0.05 else []},
        "performance": {
            "measured": measured,
            "kpis": kpis,
            "budget_breaches": sum(v["within_budget"] is False for v in kpis.values()),
            "regressed": regressed,
            "max_regression_percent": max([kpis[k]["change_percent"] for k in regressed], default=0.0),
        },
        "compliance": {
            "reviewed": True,
            "signed_off": True,
            "residual_risk": rng.choice(["low"] * 6 + ["medium"] * 3 + ["high"]),
            "controls": {"met": 8, "partially_met": 1, "not_met": 1, "not_applicable": 0, "pending": 0},
            "not_met": {c: int(rng.random() < 0.05) for c in criticality},
            "partially_met": {c: int(rng.random() < 0.1) for c in criticality},
        },
        "exemptions": {
            "policies": {"generated-13": 7} if rng.random() < 0.05 else {},
            "findings": {},
            "compensating_controls": ["SSO in front"] if rng.random() < 0.1 else [],
        },
    }


def run(documents: list[dict], compiled: list, rubric: dict) -> tuple[float, list]:
    start = time.perf_counter()
    results = [
        assess_facts(
            facts=d, rubric=rubric, rubric_label="default v1", policies=compiled, exempt=d["exemptions"]["policies"]
        )
        for d in documents
    ]
    return time.perf_counter() - start, results


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--versions", type=int, default=10_000)
    count = parser.parse_args().versions
    rng = random.Random(20261129)
    compiled = policies(rng)
    documents = [facts(rng, n) for n in range(count)]
    rubric = validated_rubric(DEFAULT_RUBRIC)
    interpreted = [replace(p, fast=None) for p in compiled]
    sample = documents[: max(count // 10, 1)]

    run(documents[:200], compiled, rubric)  # warm-up
    warden_seconds, results = run(documents, compiled, rubric)
    base_seconds, base_results = run(sample, interpreted, rubric)
    start = time.perf_counter()
    for document in documents:
        rate(facts=document | {"policies": results[0].facts["policies"]}, rubric=rubric, rubric_label="default v1")
    rating_seconds = time.perf_counter() - start

    agree = all(
        a.rating.digest == b.rating.digest and a.results == b.results
        for a, b in zip(results[: len(base_results)], base_results, strict=True)
    )
    per_version = warden_seconds * 1000 / count
    base_per_version = base_seconds * 1000 / len(sample)
    outcomes: dict[str, int] = {}
    for result in results:
        for row in result.results:
            outcomes[row["outcome"]] = outcomes.get(row["outcome"], 0) + 1
    bands: dict[str, int] = {}
    for result in results:
        bands[result.rating.band] = bands.get(result.rating.band, 0) + 1
    print(f"versions: {count}, policies: {len(compiled)} ({sum(p.reads_rating for p in compiled)} read the rating)")
    print(f"outcomes: {dict(sorted(outcomes.items()))}; bands: {dict(sorted(bands.items()))}")
    print(f"Warden (transpiled CEL, interpreter on error): {warden_seconds:.2f} s, {per_version:.2f} ms a version")
    print(f"  of which rating alone: {rating_seconds * 1000 / count:.2f} ms a version")
    print(f"baseline, cel-python's interpreter only ({len(sample)} versions): {base_per_version:.2f} ms a version")
    print(f"baseline / Warden: {base_per_version / per_version:.1f}x; same results on the sample: {agree}")
    if not agree:
        print("FAIL: the transpiled and interpreted evaluations disagree")
        return 1
    if per_version >= LIMIT_MS:
        print(f"FAIL: {per_version:.2f} ms a version, goal under {LIMIT_MS} ms")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
