"""How fast ``parse_report("sarif", ...)`` reads a 50,000-result report, against a floor.

The floor is the least any importer must do: ``json.loads`` plus one tuple per result holding
the same fields (rule, level, message, path, line, snippet, bandit severity and confidence). The
ratio floor/parse must stay >= 0.5: the importer may cost at most twice the bare minimum. The
database insert is not measured here.

Both are timed twice: with the cyclic garbage collector on, as in production (parse_report pauses
it itself, the floor does not), and with it off for both, as ``timeit`` does - the strict,
like-for-like comparison. Both ratios must pass.

    .venv/bin/python bench/bench_sarif_parse.py [--results N] [--repeat R]

The report is synthesised in memory in the shape bandit 1.9.4 writes (see
tests/fixtures/reports/bandit.sarif): a few dozen rules with CWE tags, bandit's
issue_severity/issue_confidence properties, a snippet and a context region per result. It is
written compactly by default (less whitespace makes json.loads faster, so the ratio is harder to
meet); ``--indent 2`` writes it as bandit does.
"""

import argparse
import gc
import json
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from reviews.importers import parse_report

RULES = 36
LEVELS = {"HIGH": "error", "MEDIUM": "warning", "LOW": "note"}
CWES = [78, 89, 20, 259, 327, 502, 377, 22, 94, 295, 400, 703]


def synthesise(results: int, indent: int | None = None, seed: int = 7) -> bytes:
    """A bandit-shaped SARIF log with ``results`` results over ``RULES`` rules and ~1,000 files."""
    rng = random.Random(seed)
    rules = [
        {
            "id": f"B{101 + number}",
            "name": f"check_{number}",
            "properties": {"tags": ["security", f"external/cwe/cwe-{CWES[number % len(CWES)]}"], "precision": "high"},
            "helpUri": f"https://bandit.readthedocs.io/en/1.9.4/plugins/b{101 + number}.html",
        }
        for number in range(RULES)
    ]
    files = [f"acme_plugin/module_{number // 20}/file_{number}.py" for number in range(1000)]
    items = []
    for number in range(results):
        rule_index = rng.randrange(RULES)
        severity = rng.choice(("HIGH", "MEDIUM", "LOW"))
        line = rng.randrange(1, 2000)
        code = f"    value_{number} = subprocess.call(command_{number % 97}, shell=True)\n"
        result = {
            "message": {"text": f"Issue {number}: subprocess call with shell=True identified, security issue."},
            "locations": [
                {
                    "physicalLocation": {
                        "region": {
                            "snippet": {"text": code},
                            "endColumn": 60,
                            "endLine": line,
                            "startColumn": 5,
                            "startLine": line,
                        },
                        "artifactLocation": {"uri": rng.choice(files)},
                        "contextRegion": {
                            "snippet": {"text": f"def handler_{number}(command):\n{code}\n"},
                            "endLine": line + 1,
                            "startLine": line - 1,
                        },
                    }
                }
            ],
            "properties": {"issue_confidence": rng.choice(("HIGH", "MEDIUM", "LOW")), "issue_severity": severity},
            "ruleId": rules[rule_index]["id"],
            "ruleIndex": rule_index,
        }
        if severity != "MEDIUM":  # bandit leaves out level when it is SARIF's default, "warning"
            result["level"] = LEVELS[severity]
        items.append(result)
    document = {
        "runs": [
            {
                "tool": {"driver": {"name": "Bandit", "organization": "PyCQA", "rules": rules, "version": "1.9.4"}},
                "invocations": [{"executionSuccessful": True, "endTimeUtc": "2026-11-29T01:59:19Z"}],
                "results": items,
            }
        ],
        "version": "2.1.0",
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
    }
    return json.dumps(document, indent=indent).encode()


def floor(data: bytes) -> list[tuple]:
    """The bare minimum: decode, then pick the same fields out of every result into a tuple."""
    document = json.loads(data)
    rows = []
    for run in document["runs"]:
        for result in run["results"]:
            physical = result["locations"][0]["physicalLocation"]
            region = physical["region"]
            properties = result.get("properties", {})
            rows.append(
                (
                    result["ruleId"],
                    result.get("level", "warning"),
                    result["message"]["text"],
                    physical["artifactLocation"]["uri"],
                    region["startLine"],
                    region["snippet"]["text"],
                    properties.get("issue_severity"),
                    properties.get("issue_confidence"),
                )
            )
    return rows


def best_of(repeat: int, works: dict[str, Callable[[], object]], collector: bool) -> dict[str, float]:
    """Best wall time of each piece of work, interleaved so both see the same machine load, after a
    full collection each; with the cyclic collector on (as in production) or off (as timeit does)."""
    times: dict[str, list[float]] = {name: [] for name in works}
    for _ in range(repeat):
        for name, work in works.items():
            gc.collect()
            if not collector:
                gc.disable()
            try:
                started = time.perf_counter()
                work()
                times[name].append(time.perf_counter() - started)
            finally:
                gc.enable()
    return {name: min(values) for name, values in times.items()}


def main() -> int:
    options = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    options.add_argument("--results", type=int, default=50_000)
    options.add_argument("--repeat", type=int, default=3)
    options.add_argument("--indent", type=int, default=None, help="pretty-print like bandit (bigger, easier ratio)")
    args = options.parse_args()
    data = synthesise(args.results, args.indent)
    limit = max(len(data), 50 * 1024 * 1024)  # bandit's indented output for 50,000 results is ~60 MB
    report = parse_report("sarif", data, max_bytes=limit)
    assert len(report.findings) == args.results == len(floor(data)), "parse and floor disagree on the count"
    del report
    works = {"floor": lambda: floor(data), "parse": lambda: parse_report("sarif", data, max_bytes=limit)}
    print(f"report: {args.results} results, {len(data) / 1e6:.1f} MB, {RULES} rules; best of {args.repeat}")
    passed = True
    for collector, label in ((True, "gc on (production)"), (False, "gc off (timeit-style, strict)")):
        best = best_of(args.repeat, works, collector)
        ratio = best["floor"] / best["parse"]
        passed &= ratio >= 0.5
        print(
            f"{label:31} floor (json.loads + tuples) {best['floor'] * 1000:7.1f} ms | "
            f"parse_report {best['parse'] * 1000:7.1f} ms ({best['parse'] / args.results * 1e6:.1f} us/result) | "
            f"ratio floor/parse {ratio:.2f} (must be >= 0.50)"
        )
    print("PASS" if passed else "FAIL")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
