"""Benchmark: 500 pinned requirements against 5,000 OSV advisories must match in well under 0.5 s.

Run from the repository root: ``.venv/bin/python bench/bench_advisory_match.py``. Exits 1 when
matching takes 0.5 s or more. The data is synthetic but shaped like the PyPI slice of OSV:
~1,500 packages, mostly ``introduced 0 / fixed`` ranges, some multi-pair, ``last_affected`` and
introduced-only ranges, PyPA-style explicit version lists, GIT ranges, other ecosystems and a
few withdrawn records. The baseline is the floor any matcher pays: one dict lookup and one
``Version()`` parse per requirement.
"""

from __future__ import annotations

import functools
import itertools
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from packaging.version import Version

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reviews.advisories.matching import AdvisoryIndex, Match, PinnedRequirement, parse_requirement
from reviews.advisories.osv import Advisory, normalise_name, parse_advisory

ADVISORIES = 5_000
PACKAGES = 1_500
REQUIREMENTS = 500
LIMIT_SECONDS = 0.5
ROUNDS = 5
SYLLABLES = ("py", "django", "flask", "yaml", "req", "http", "json", "auth", "crypt", "data", "tool", "kit", "lib")


def package_names(rng: random.Random, count: int) -> list[str]:
    """Distinct projects (after PEP 503 normalisation) spelled as people do: case, ``_`` and ``.``."""
    names: dict[str, str] = {}
    while len(names) < count:
        parts = rng.sample(SYLLABLES, rng.randint(2, 3))
        spelled = rng.choice(["-", "_", ".", ""]).join(parts) + (str(rng.randint(1, 99)) if rng.random() < 0.5 else "")
        names.setdefault(normalise_name(spelled), spelled.title() if rng.random() < 0.2 else spelled)
    return sorted(names.values())


def popular(rng: random.Random, names: list[str]) -> str:
    """Skewed like the real data (Django alone has hundreds of advisories): rank r has weight 1/r."""
    return rng.choices(names, cum_weights=_cumulative_weights(len(names)))[0]


@functools.cache
def _cumulative_weights(count: int) -> list[float]:
    return list(itertools.accumulate(1 / rank for rank in range(1, count + 1)))


def version(rng: random.Random, major_max: int = 6) -> str:
    return f"{rng.randint(0, major_max)}.{rng.randint(0, 20)}.{rng.randint(0, 15)}"


def sorted_versions(rng: random.Random, count: int) -> list[str]:
    return sorted({version(rng) for _ in range(count * 2)}, key=Version)[:count]


def events_for(rng: random.Random) -> tuple[list[dict], list[str]]:
    """One range's events plus an explicit versions list (empty unless PyPA-style)."""
    shape = rng.random()
    if shape < 0.40:
        return [{"introduced": "0"}, {"fixed": version(rng)}], []
    if shape < 0.60:
        low, high = sorted_versions(rng, 2)
        return [{"introduced": low}, {"fixed": high}], []
    if shape < 0.75:
        bounds = sorted_versions(rng, 6)
        return [
            {k: v}
            for pair in zip(bounds[::2], bounds[1::2], strict=True)
            for k, v in zip(("introduced", "fixed"), pair, strict=True)
        ], []
    if shape < 0.85:
        return [{"introduced": "0"}, {"last_affected": version(rng)}], []
    if shape < 0.95:
        listed = sorted_versions(rng, rng.randint(10, 40))
        return [{"introduced": listed[0]}, {"fixed": f"{Version(listed[-1]).major + 1}.0.0"}], listed
    return [{"introduced": version(rng)}], []


def advisory_data(rng: random.Random, number: int, names: list[str]) -> dict:
    events, listed = events_for(rng)
    ranges = [{"type": "ECOSYSTEM", "events": events}]
    if rng.random() < 0.1:
        ranges.append(
            {"type": "GIT", "repo": "https://example.org/x", "events": [{"introduced": "0"}, {"fixed": "ab12"}]}
        )
    name = names[number] if number < len(names) else popular(rng, names)  # every package at least once
    affected: dict[str, Any] = {"package": {"ecosystem": "PyPI", "name": name}, "ranges": ranges}
    if listed:
        affected["versions"] = listed
    others = [{"package": {"ecosystem": "npm", "name": "left-pad"}, "versions": ["1.0.0"]}]
    data: dict[str, Any] = {
        "id": f"PYSEC-2099-{number}",
        "modified": "2024-05-01T12:00:00Z",
        "published": "2024-04-01T12:00:00Z",
        "aliases": [f"CVE-2099-{number}"],
        "summary": "synthetic advisory",
        "affected": [affected, *others] if rng.random() < 0.03 else [affected],
        "database_specific": {"severity": rng.choice(["LOW", "MODERATE", "HIGH", "CRITICAL"])},
    }
    if rng.random() < 0.02:
        data["withdrawn"] = "2024-06-01T00:00:00Z"
    return data


def requirements(rng: random.Random, names: list[str]) -> list[PinnedRequirement]:
    """30% name an advised package, popular ones most; a quarter of those pin an old release
    (likely affected), the rest a release newer than the synthetic fixes. Other names are clean."""
    chosen = []
    for n in range(REQUIREMENTS):
        name = popular(rng, names) if rng.random() < 0.3 else f"clean-package-{n}"
        pinned = (
            version(rng) if rng.random() < 0.25 else f"{rng.randint(7, 9)}.{rng.randint(0, 20)}.{rng.randint(0, 9)}"
        )
        pin = parse_requirement(f"{name}=={pinned}")
        assert pin is not None
        chosen.append(pin)
    return chosen


def best_of(rounds: int, work: Callable[[], object]) -> tuple[float, object]:
    timings, result = [], None
    for _ in range(rounds):
        start = time.perf_counter()
        result = work()
        timings.append(time.perf_counter() - start)
    return min(timings), result


def baseline(names: dict[str, list[Advisory]], pins: list[PinnedRequirement]) -> int:
    """The unavoidable floor: one lookup and one parse per requirement."""
    found = 0
    for pin in pins:
        found += names.get(pin.name) is not None
        Version(pin.version)
    return found


def main() -> int:
    rng = random.Random(20240501)  # reproducible synthetic data
    names = package_names(rng, PACKAGES)
    raw = [advisory_data(rng, n, names) for n in range(ADVISORIES)]
    pins = requirements(rng, names)

    parse_seconds, parsed = best_of(1, lambda: [parse_advisory(data) for data in raw])
    advisories: list[Advisory] = parsed  # type: ignore[assignment]
    cold_seconds, _ = best_of(1, lambda: AdvisoryIndex(advisories))  # first build: version cache empty
    build_seconds, built = best_of(ROUNDS, lambda: AdvisoryIndex(advisories))
    index: AdvisoryIndex = built  # type: ignore[assignment]
    match_seconds, result = best_of(ROUNDS, lambda: index.match(pins))
    matches: list[Match] = result  # type: ignore[assignment]
    by_name: dict[str, list[Advisory]] = {}
    for advisory in advisories:
        for package in advisory.packages:
            by_name.setdefault(package.name, []).append(advisory)
    base_seconds, _ = best_of(ROUNDS, lambda: baseline(by_name, pins))

    distinct = len({p.name for a in advisories for p in a.packages if p.ecosystem == "PyPI"})
    print(f"advisories: {len(advisories)} ({len(index)} indexed, {distinct} distinct PyPI packages)")
    print(f"requirements: {len(pins)} ({sum(p.name in by_name for p in pins)} name an advised package)")
    print(f"advisory parse: {parse_seconds * 1000:.1f} ms")
    print(f"index build, first: {cold_seconds * 1000:.1f} ms")
    print(f"index build (best of {ROUNDS}): {build_seconds * 1000:.1f} ms")
    print(f"match time (best of {ROUNDS}): {match_seconds * 1000:.2f} ms")
    print(f"matches found: {len(matches)} ({len({id(m.requirement) for m in matches})} requirements affected)")
    print(f"baseline, lookup + Version() per requirement (best of {ROUNDS}): {base_seconds * 1000:.2f} ms")
    print(f"match / baseline: {match_seconds / base_seconds:.2f}x")
    if match_seconds >= LIMIT_SECONDS:
        print(f"FAIL: matching took {match_seconds:.3f} s, limit {LIMIT_SECONDS} s")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
