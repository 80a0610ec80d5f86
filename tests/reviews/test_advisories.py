"""OSV advisory reading and matching: plain pytest, no database.

Fixtures under tests/fixtures/osv/ are real advisories copied verbatim (see SOURCES.md there).
"""

import copy
import json
import random
import shutil
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from packaging.version import Version

from reviews.advisories.matching import AdvisoryIndex, PinnedRequirement, parse_requirement
from reviews.advisories.osv import (
    MAX_MEMBER_BYTES,
    Advisory,
    load_any,
    load_directory,
    load_json_file,
    load_yaml_file,
    load_zip,
    parse_advisory,
)
from reviews.advisories.severity import cvss3_base_score, derive_severity, severity_band
from reviews.findings_data import ReportError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "osv"
GHSA_REQUESTS = FIXTURES / "ghsa" / "GHSA-j8r2-6x86-q33q.json"
GHSA_PY = FIXTURES / "ghsa" / "GHSA-w596-4wvx-j9j6.json"
PYSEC_PYYAML = FIXTURES / "vulns" / "pyyaml" / "PYSEC-2020-96.yaml"
PYSEC_DJANGO = FIXTURES / "vulns" / "django" / "PYSEC-0000-CVE-2024-27351.yaml"
PYSEC_REDIS = FIXTURES / "vulns" / "redis" / "PYSEC-2023-73.yaml"
PYSEC_REQUESTS = FIXTURES / "vulns" / "requests" / "PYSEC-2023-74.yaml"
ALL_IDS = {
    "GHSA-j8r2-6x86-q33q",
    "GHSA-w596-4wvx-j9j6",
    "PYSEC-2020-96",
    "PYSEC-0000-CVE-2024-27351",
    "PYSEC-2023-73",
    "PYSEC-2023-74",
}


def raw(path: Path) -> dict:
    """The fixture as a plain dict, whichever format it is stored in."""
    text = path.read_text(encoding="utf-8")
    return json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)


def one(path: Path) -> Advisory:
    (advisory,) = load_any(path)
    return advisory


def osv(events=None, *, versions=None, name="foo-bar", ecosystem="PyPI", range_type="ECOSYSTEM", **extra) -> Advisory:
    """A minimal advisory around one affected package, for range edge cases."""
    affected: dict = {"package": {"ecosystem": ecosystem, "name": name}}
    if events is not None:
        affected["ranges"] = [{"type": range_type, "events": events}]
    if versions is not None:
        affected["versions"] = versions
    return parse_advisory({"id": "TEST-1", "modified": "2024-01-01T00:00:00Z", "affected": [affected], **extra})


def affected(advisories, *pins: str) -> dict[str, list[str]]:
    """``{"name==version": [advisory ids]}`` for the pins that match anything."""
    index = AdvisoryIndex(advisories if isinstance(advisories, list) else [advisories])
    found: dict[str, list[str]] = {}
    for match in index.match(pin(text) for text in pins):
        found.setdefault(match.requirement.text, []).append(match.advisory.id)
    return found


def pin(text: str) -> PinnedRequirement:
    parsed = parse_requirement(text)
    assert parsed is not None, text
    return parsed


def hits(advisory: Advisory, version: str) -> bool:
    return bool(AdvisoryIndex([advisory]).match([PinnedRequirement(advisory.packages[0].name, version)]))


# --- loaders -------------------------------------------------------------------------------


def test_json_file_gives_a_complete_advisory():
    advisory = one(GHSA_REQUESTS)
    assert advisory.id == "GHSA-j8r2-6x86-q33q"
    assert advisory.modified == datetime(2023, 9, 20, 19, 19, 30, tzinfo=UTC)
    assert advisory.published == datetime(2023, 5, 22, 20, 36, 32, tzinfo=UTC)
    assert advisory.withdrawn is None
    assert advisory.aliases == ("CVE-2023-32681",)
    assert advisory.summary == "Unintended leak of Proxy-Authorization header in requests"
    assert advisory.details.startswith("### Impact")
    (package,) = advisory.packages
    assert (package.ecosystem, package.name, package.fixed) == ("PyPI", "requests", ("2.31.0",))
    assert package.ranges[0].type == "ECOSYSTEM"
    assert package.ranges[0].events == (("introduced", "2.3.0"), ("fixed", "2.31.0"))
    assert advisory.raw == raw(GHSA_REQUESTS)


def test_json_file_may_hold_a_list(tmp_path):
    path = tmp_path / "two.json"
    path.write_text(json.dumps([raw(GHSA_REQUESTS), raw(GHSA_PY)]))
    assert [a.id for a in load_json_file(path)] == ["GHSA-j8r2-6x86-q33q", "GHSA-w596-4wvx-j9j6"]


def test_pypa_yaml_file_keeps_explicit_versions_and_quoted_numbers_as_text():
    advisory = one(PYSEC_PYYAML)
    (package,) = advisory.packages
    assert package.versions == frozenset({"5.1", "5.1.1", "5.1.2", "5.2b1", "5.2", "5.3b1", "5.3"})
    assert package.ranges[0].events == (("introduced", "5.1"), ("fixed", "5.3.1"))
    assert advisory.modified == datetime(2021, 3, 26, 2, 44, tzinfo=UTC)


def test_withdrawn_and_fractional_timestamps_are_aware():
    redis = one(PYSEC_REDIS)
    assert redis.withdrawn == datetime(2023, 6, 6, 10, 37, tzinfo=UTC)
    assert redis.is_withdrawn
    django = one(PYSEC_DJANGO)
    assert django.modified == datetime(2024, 3, 15, 23, 20, 34, 975097, tzinfo=UTC)


def test_unquoted_yaml_timestamp_is_parsed_and_raw_stays_json(tmp_path):
    path = tmp_path / "PYSEC-X.yaml"
    path.write_text("id: PYSEC-X\nmodified: 2021-03-26T02:44:00Z\npublished: 2020-03-24\n")
    advisory = one(path)
    assert advisory.modified == datetime(2021, 3, 26, 2, 44, tzinfo=UTC)
    assert advisory.published == datetime(2020, 3, 24, tzinfo=UTC)
    assert json.loads(json.dumps(advisory.raw))["published"] == "2020-03-24"


def test_directory_reads_yaml_and_json_recursively_and_skips_hidden_and_other_files(tmp_path):
    tree = tmp_path / "db"
    shutil.copytree(FIXTURES, tree)
    (tree / ".github" / "workflows").mkdir(parents=True)
    (tree / ".github" / "workflows" / "ci.yml").write_text("on: push\njobs: {}\n")
    (tree / "vulns" / "notes.txt").write_text("not an advisory")
    assert {a.id for a in load_directory(tree)} == ALL_IDS
    assert {a.id for a in load_any(tree)} == ALL_IDS


def build_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def fixture_members() -> dict[str, bytes]:
    """What OSV's all.zip holds: one <id>.json per advisory (the YAML fixtures as JSON)."""
    files = [GHSA_REQUESTS, GHSA_PY, PYSEC_PYYAML, PYSEC_DJANGO, PYSEC_REDIS, PYSEC_REQUESTS]
    return {f"{raw(f)['id']}.json": json.dumps(raw(f)).encode() for f in files}


def test_zip_export_reads_each_json_member_and_skips_the_rest(tmp_path):
    members = {**fixture_members(), "README.txt": b"not json at all", "nested/": b""}
    archive = build_zip(tmp_path / "all.zip", members)
    assert {a.id for a in load_zip(archive)} == ALL_IDS
    assert {a.id for a in load_any(archive)} == ALL_IDS


def test_zip_refuses_an_oversized_member_and_names_it(tmp_path):
    huge = json.dumps({"id": "BIG-1", "modified": "2024-01-01T00:00:00Z", "details": "x" * MAX_MEMBER_BYTES}).encode()
    archive = build_zip(
        tmp_path / "all.zip", {"GOOD.json": fixture_members()["PYSEC-2020-96.json"], "BIG-1.json": huge}
    )
    first = load_zip(archive)
    assert next(first).id == "PYSEC-2020-96"  # streamed: the good member arrives before the bad one is read
    with pytest.raises(ReportError, match=r"all\.zip:BIG-1\.json: .*over the 5242880 byte limit"):
        next(first)
    problems: list[ReportError] = []
    assert [a.id for a in load_zip(archive, errors=problems)] == ["PYSEC-2020-96"]
    assert len(problems) == 1
    assert "BIG-1.json" in str(problems[0])


def test_zip_that_is_not_a_zip_is_a_report_error(tmp_path):
    path = tmp_path / "all.zip"
    path.write_bytes(b"PK but not really")
    with pytest.raises(ReportError, match="not a readable zip file"):
        list(load_zip(path))


def test_load_any_refuses_what_it_cannot_read(tmp_path):
    with pytest.raises(ReportError, match="no such file"):
        load_any(tmp_path / "missing.json")
    other = tmp_path / "advisories.csv"
    other.write_text("id,modified\n")
    with pytest.raises(ReportError, match=r"not a directory, a \.zip"):
        load_any(other)


def test_load_any_reads_a_single_yaml_file():
    assert [a.id for a in load_any(PYSEC_REDIS)] == ["PYSEC-2023-73"]
    assert [a.id for a in load_yaml_file(PYSEC_DJANGO)] == ["PYSEC-0000-CVE-2024-27351"]


# --- malformed input -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.pop("id"), r"advisory without an id: field 'id'"),
        (lambda d: d.update(id=""), r"field 'id' must be a non-empty string"),
        (lambda d: d.pop("modified"), r"GHSA-j8r2-6x86-q33q: field 'modified' is missing"),
        (lambda d: d.update(modified="last tuesday"), r"GHSA-j8r2-6x86-q33q: field 'modified' is not an RFC 3339"),
        (lambda d: d.update(modified=20230920), r"GHSA-j8r2-6x86-q33q: field 'modified' must be a timestamp"),
        (lambda d: d.update(published="soon"), r"GHSA-j8r2-6x86-q33q: field 'published'"),
        (lambda d: d.update(affected={"package": "requests"}), r"GHSA-j8r2-6x86-q33q: field 'affected' must be a list"),
        (lambda d: d.update(aliases=[1]), r"field 'aliases\[0\]' must be a string"),
        (lambda d: d["affected"][0].update(package="requests"), r"field 'affected\[0\].package' must be an object"),
        (lambda d: d["affected"][0]["package"].pop("name"), r"'affected\[0\].package.name' is missing"),
        (lambda d: d["affected"][0]["ranges"][0].pop("type"), r"'affected\[0\].ranges\[0\]' must be an object"),
        (lambda d: d["affected"][0].update(versions="2.3.0"), r"field 'affected\[0\].versions' must be a list"),
        (lambda d: d["affected"][0]["package"].update(ecosystem=3), r"field 'affected\[0\].package.ecosystem' must be"),
        (lambda d: d["affected"][0]["ranges"][0]["events"].append("2.0"), r"'affected\[0\].ranges\[0\].events\[2\]'"),
    ],
)
def test_malformed_advisory_names_the_id_and_the_field(change, message):
    data = copy.deepcopy(raw(GHSA_REQUESTS))
    change(data)
    with pytest.raises(ReportError, match=message):
        parse_advisory(data)


def test_non_object_advisory_is_a_report_error():
    with pytest.raises(ReportError, match="must be an object, not list"):
        parse_advisory([])


def test_unquoted_yaml_float_version_is_refused_with_file_and_field(tmp_path):
    """``fixed: 5.10`` unquoted arrives as the float 5.1; matching on it would be silently wrong."""
    path = tmp_path / "vulns" / "foo" / "PYSEC-F.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(
        "id: PYSEC-F\nmodified: '2024-01-01T00:00:00Z'\naffected:\n- package: {name: foo, ecosystem: PyPI}\n"
        "  ranges:\n  - type: ECOSYSTEM\n    events:\n    - introduced: 0\n    - fixed: 5.10\n"
    )
    with pytest.raises(ReportError) as caught:
        list(load_directory(tmp_path))
    assert str(path) in str(caught.value)
    assert "'affected[0].ranges[0].events[1].fixed' must be a version string, not float 5.1" in str(caught.value)


def test_unreadable_json_names_the_file(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"id": "X", ')
    with pytest.raises(ReportError, match=r"broken\.json: cannot read"):
        list(load_json_file(path))


def test_collect_mode_reports_bad_files_and_goes_on(tmp_path):
    shutil.copytree(FIXTURES, tmp_path / "db")
    (tmp_path / "db" / "broken.json").write_text("{nope")
    (tmp_path / "db" / "vulns" / "x" / "PYSEC-NOID.yaml").parent.mkdir()
    (tmp_path / "db" / "vulns" / "x" / "PYSEC-NOID.yaml").write_text("modified: '2024-01-01T00:00:00Z'\n")
    problems: list[ReportError] = []
    assert {a.id for a in load_any(tmp_path / "db", errors=problems)} == ALL_IDS
    assert sorted(Path(str(p).split(":")[0]).name for p in problems) == ["PYSEC-NOID.yaml", "broken.json"]
    with pytest.raises(ReportError, match=r"broken\.json"):
        list(load_any(tmp_path / "db"))


def test_a_bad_entry_in_a_list_is_named_by_index(tmp_path):
    path = tmp_path / "many.json"
    path.write_text(json.dumps([raw(GHSA_PY), {"id": "NO-DATE"}]))
    problems: list[ReportError] = []
    assert [a.id for a in load_json_file(path, errors=problems)] == ["GHSA-w596-4wvx-j9j6"]
    assert f"{path}[1]: NO-DATE: field 'modified' is missing" == str(problems[0])


# --- severity ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("label", "expected"), [("CRITICAL", "critical"), ("HIGH", "high"), ("MODERATE", "medium"), ("LOW", "low")]
)
def test_github_label_wins_over_the_cvss_vector(label, expected):
    data = raw(GHSA_REQUESTS)  # its vector scores 6.1, medium
    data["database_specific"]["severity"] = label
    assert derive_severity(data) == expected


def test_fixture_severities():
    assert one(GHSA_REQUESTS).severity == "medium"
    assert one(GHSA_PY).severity == "medium"
    assert one(PYSEC_DJANGO).severity == "medium"  # no label, no vector: the default


@pytest.mark.parametrize(
    ("vector", "score"),
    [
        ("CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:C/C:H/I:N/A:N", 6.1),  # requests, NVD CVE-2023-32681
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:L", 5.3),  # py, NVD CVE-2022-42969
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", 10.0),
        ("CVSS:3.1/AV:N/AC:L/PR:H/UI:N/S:C/C:H/I:H/A:H", 9.1),  # PR:H weighs 0.5 when scope changes
        ("CVSS:3.1/AV:N/AC:L/PR:L/UI:R/S:C/C:L/I:L/A:N", 5.4),
        ("CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H", 7.5),
        ("CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H", 7.8),
        ("CVSS:3.1/AV:P/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N", 1.6),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N", 0.0),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/E:P/RL:O", 9.8),  # temporal metrics ignored
    ],
)
def test_cvss3_base_score(vector, score):
    assert cvss3_base_score(vector) == score


@pytest.mark.parametrize(
    "vector",
    [
        "AV:N/AC:L/Au:N/C:P/I:P/A:P",  # CVSS v2
        "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
        "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H",  # no A
        "CVSS:3.1/AV:X/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
        "",
    ],
)
def test_cvss3_base_score_refuses_what_is_not_a_v3_base_vector(vector):
    assert cvss3_base_score(vector) is None


@pytest.mark.parametrize(
    ("score", "band"),
    [
        (10.0, "critical"),
        (9.0, "critical"),
        (8.9, "high"),
        (7.0, "high"),
        (6.9, "medium"),
        (4.0, "medium"),
        (3.9, "low"),
        (0.1, "low"),
    ],
)
def test_severity_band_edges(score, band):
    assert severity_band(score) == band


def test_vector_decides_without_a_label():
    data = raw(GHSA_REQUESTS)
    del data["database_specific"]
    data["severity"][0]["score"] = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"
    assert derive_severity(data) == "critical"
    data["severity"][0]["score"] = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H"
    assert derive_severity(data) == "high"
    data["severity"][0]["score"] = "CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:U/C:L/I:N/A:N"
    assert derive_severity(data) == "low"


def test_unknown_label_falls_back_to_the_vector_and_per_package_severity_counts():
    data = raw(GHSA_PY)
    data["database_specific"]["severity"] = "UNKNOWN"
    data["affected"][0]["severity"] = [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}]
    del data["severity"]
    assert derive_severity(data) == "critical"


def test_default_is_medium_when_nothing_usable_is_given():
    assert osv([{"introduced": "0"}]).severity == "medium"
    v4 = [{"type": "CVSS_V4", "score": "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"}]
    assert osv([{"introduced": "0"}], severity=v4).severity == "medium"


# --- range evaluation ----------------------------------------------------------------------


def test_introduced_zero_means_from_the_very_first_release():
    advisory = osv([{"introduced": "0"}, {"fixed": "1.0"}])
    assert hits(advisory, "0.0.1.dev0")  # sorts before Version("0"): "0" must not be a real bound
    assert hits(advisory, "0.9.9")
    assert hits(advisory, "1.0rc1")
    assert not hits(advisory, "1.0")
    assert not hits(advisory, "1.0.1")
    (match,) = AdvisoryIndex([advisory]).match([PinnedRequirement("foo-bar", "0.5")])
    assert (match.affected, match.fixed) == ("<1.0", ("1.0",))


def test_introduced_without_fix_affects_everything_after():
    assert hits(osv([{"introduced": "0"}]), "99.0")
    advisory = osv([{"introduced": "2.0"}])
    assert hits(advisory, "2.0")
    assert hits(advisory, "2024.1")
    assert not hits(advisory, "1.9")
    (match,) = AdvisoryIndex([advisory]).match([PinnedRequirement("foo-bar", "3.0")])
    assert (match.affected, match.fixed) == (">=2.0", ())


def test_several_introduced_fixed_pairs_in_one_range():
    django = one(PYSEC_DJANGO)
    for version in ("3.2", "3.2.24", "4.2", "4.2.10", "5.0", "5.0.2"):
        assert hits(django, version), version
    for version in ("3.1.14", "3.2.25", "4.0", "4.1.13", "4.2.11", "5.0.3", "5.1"):
        assert not hits(django, version), version


def test_events_are_evaluated_in_version_order_not_file_order():
    shuffled = osv([{"fixed": "2.0"}, {"introduced": "3.0"}, {"introduced": "1.0"}, {"fixed": "3.5"}])
    assert [hits(shuffled, v) for v in ("0.9", "1.0", "1.9", "2.0", "2.9", "3.0", "3.4", "3.5")] == [
        False,
        True,
        True,
        False,
        False,
        True,
        True,
        False,
    ]


def test_last_affected_is_inclusive():
    py = one(GHSA_PY)
    assert hits(py, "1.11.0")
    assert hits(py, "1.4.34")
    assert not hits(py, "1.11.1")
    (match,) = AdvisoryIndex([py]).match([pin("py==1.11.0")])
    assert (match.affected, match.fixed) == ("<=1.11.0", ())
    bounded = osv([{"introduced": "1.0"}, {"last_affected": "1.4.2"}])
    assert [hits(bounded, v) for v in ("0.9", "1.0", "1.4.2", "1.4.3")] == [False, True, True, False]
    (match,) = AdvisoryIndex([bounded]).match([PinnedRequirement("foo-bar", "1.2")])
    assert match.affected == ">=1.0, <=1.4.2"


def test_bounds_compare_by_pep440_equality():
    advisory = osv([{"introduced": "1.0"}, {"fixed": "2.0"}])
    assert hits(advisory, "1.0.0")  # == 1.0, so introduced
    assert not hits(advisory, "2.0.0")  # == 2.0, so fixed
    assert not hits(advisory, "1.0rc1")
    assert hits(advisory, "2.0rc1")  # a pre-release of the fix is still before it


def test_several_affected_entries_for_one_package_give_one_match():
    advisory = parse_advisory(
        {
            "id": "GHSA-TEST",
            "modified": "2024-01-01T00:00:00Z",
            "affected": [
                {
                    "package": {"ecosystem": "PyPI", "name": "Foo"},
                    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.2.3"}]}],
                },
                {
                    "package": {"ecosystem": "PyPI", "name": "foo"},
                    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "2.0"}, {"fixed": "2.0.5"}]}],
                },
            ],
        }
    )
    index = AdvisoryIndex([advisory])
    (old,) = index.match([PinnedRequirement("foo", "1.0")])
    assert (old.affected, old.fixed) == ("<1.2.3", ("1.2.3", "2.0.5"))
    (new,) = index.match([PinnedRequirement("foo", "2.0.1")])
    assert (new.affected, new.fixed) == (">=2.0, <2.0.5", ("2.0.5",))
    assert index.match([PinnedRequirement("foo", "1.5")]) == []


def test_limit_bounds_the_range_and_star_means_no_bound():
    limited = osv([{"introduced": "0"}, {"limit": "2.0"}])
    assert hits(limited, "1.9")
    assert not hits(limited, "2.0")
    assert hits(osv([{"introduced": "0"}, {"limit": "*"}]), "9.0")
    two_limits = osv([{"introduced": "1.0"}, {"limit": "1.5"}, {"limit": "3.0"}])  # below any limit counts
    assert [hits(two_limits, v) for v in ("0.9", "1.0", "2.9", "3.0")] == [False, True, True, False]


def test_explicit_versions_match_with_pep440_equality():
    advisory = osv(versions=["1.0", "1.1"])
    assert hits(advisory, "1.1")
    assert hits(advisory, "1.0.0")  # PEP 440: 1.0 == 1.0.0
    assert not hits(advisory, "1.2")
    (match,) = AdvisoryIndex([advisory]).match([PinnedRequirement("foo-bar", "1.0")])
    assert (match.affected, match.fixed) == ("versions: 1.0, 1.1", ())


def test_explicit_versions_add_to_the_ranges():
    advisory = osv([{"introduced": "2.0"}, {"fixed": "2.1"}], versions=["1.5"])
    assert hits(advisory, "1.5")
    assert hits(advisory, "2.0.3")
    assert not hits(advisory, "1.6")


def test_pypa_fixture_range_and_prerelease_versions():
    pyyaml = one(PYSEC_PYYAML)
    assert hits(pyyaml, "5.2b1")
    assert hits(pyyaml, "5.3")
    assert not hits(pyyaml, "5.3.1")
    assert not hits(pyyaml, "5.1b7")  # a pre-release of 5.1 sorts before introduced 5.1


def test_long_version_lists_are_shortened_in_the_report():
    advisory = osv(versions=[f"1.{n}" for n in range(10)])
    (match,) = AdvisoryIndex([advisory]).match([PinnedRequirement("foo-bar", "1.9")])
    assert match.affected == "versions: 1.0, 1.1, 1.2, 1.3, 1.4, 1.5 and 4 more"


def test_withdrawn_advisory_never_matches():
    redis = one(PYSEC_REDIS)
    assert "4.5.5" in redis.packages[0].versions
    assert not hits(redis, "4.5.5")
    assert not hits(redis, "1.0")  # nor through its introduced-0 range
    live = raw(PYSEC_REDIS)
    del live["withdrawn"]
    assert hits(parse_advisory(live), "4.5.5")  # the same data unwithdrawn does match
    assert len(AdvisoryIndex([redis])) == 0


def test_unparseable_versions_are_skipped_without_crashing():
    never_fixed = osv([{"introduced": "0"}, {"fixed": "not a version!"}])
    assert hits(never_fixed, "99.0")  # the unreadable fix is skipped: still open-ended
    no_start = osv([{"introduced": "garbage"}, {"fixed": "2.0"}])
    assert not hits(no_start, "1.0")  # nothing opens the interval
    listed = osv(versions=["1.0-legacy??", "1.1"])
    assert hits(listed, "1.1")
    index = AdvisoryIndex([osv([{"introduced": "0"}])])
    assert index.match([PinnedRequirement("foo-bar", "also garbage")]) == []
    assert pin("foo-bar===legacy.thing").version == "legacy.thing"
    assert index.match([pin("foo-bar===legacy.thing")]) == []


def test_git_and_semver_ranges_are_not_evaluated_for_pypi():
    requests_pysec = one(PYSEC_REQUESTS)  # GIT range: introduced "0", fixed <commit>
    assert not hits(requests_pysec, "2.2.1")
    assert not hits(requests_pysec, "2.31.0")
    assert hits(requests_pysec, "2.30.0")
    assert not hits(osv([{"introduced": "0"}], range_type="SEMVER"), "1.0")
    assert not hits(osv([{"introduced": "0"}], range_type="GIT"), "1.0")


def test_other_ecosystems_are_kept_but_not_matched():
    npm = osv([{"introduced": "0"}], ecosystem="npm", name="Foo_Bar")
    assert npm.packages[0].name == "Foo_Bar"  # verbatim outside PyPI
    assert AdvisoryIndex([npm]).match([PinnedRequirement("foo-bar", "1.0")]) == []


def test_names_are_pep503_normalised_on_both_sides():
    assert affected(one(PYSEC_PYYAML), "PyYAML==5.3", "pyyaml==5.3.1") == {"PyYAML==5.3": ["PYSEC-2020-96"]}
    advisory = osv([{"introduced": "0"}], name="Foo_Bar")
    assert advisory.packages[0].name == "foo-bar"
    assert set(affected(advisory, "foo-bar==1.0", "FOO.bar==1.0", "foo__bar==1.0", "foobar==1.0")) == {
        "foo-bar==1.0",
        "FOO.bar==1.0",
        "foo__bar==1.0",
    }
    assert PinnedRequirement("Foo_Bar", "1.0").name == "foo-bar"


def test_fixed_lists_later_unaffected_fixes_only():
    (match,) = AdvisoryIndex([one(PYSEC_DJANGO)]).match([pin("Django==4.2.10")])
    assert (match.affected, match.fixed) == (">=4.2, <4.2.11", ("4.2.11", "5.0.3"))
    overlapping = parse_advisory(
        {
            "id": "TEST-2",
            "modified": "2024-01-01T00:00:00Z",
            "affected": [
                {
                    "package": {"ecosystem": "PyPI", "name": "foo"},
                    "ranges": [
                        {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.0"}]},
                        {"type": "ECOSYSTEM", "events": [{"introduced": "1.5"}, {"fixed": "3.0"}]},
                    ],
                }
            ],
        }
    )
    (match,) = AdvisoryIndex([overlapping]).match([PinnedRequirement("foo", "1.0")])
    assert match.fixed == ("3.0",)  # 2.0 is itself affected by the second range


def test_index_over_all_fixtures():
    found = affected(
        list(load_any(FIXTURES)),
        "requests==2.30.0",
        "requests==2.31.0",
        "py==1.11.0",
        "redis==4.5.5",
        "Django==5.0.2",
        "django==5.0.3",
        "PyYAML==5.2",
    )
    assert found == {
        "requests==2.30.0": ["GHSA-j8r2-6x86-q33q", "PYSEC-2023-74"],
        "py==1.11.0": ["GHSA-w596-4wvx-j9j6"],
        "Django==5.0.2": ["PYSEC-0000-CVE-2024-27351"],
        "PyYAML==5.2": ["PYSEC-2020-96"],
    }


def test_a_repeated_id_keeps_the_latest_modified_copy():
    old = osv([{"introduced": "0"}, {"fixed": "1.0"}], modified="2020-01-01T00:00:00Z")
    new = osv([{"introduced": "0"}, {"fixed": "2.0"}], modified="2024-06-01T00:00:00Z")
    for order in ([old, new], [new, old]):
        index = AdvisoryIndex(order)
        assert len(index) == 1
        (match,) = index.match([PinnedRequirement("foo-bar", "1.5")])
        assert match.fixed == ("2.0",)


# --- requirements --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("requests==2.31.0", ("requests", "2.31.0")),
        ("  PyYAML == 5.3  ", ("pyyaml", "5.3")),
        ("Foo_Bar[extra]==1.0; python_version >= '3.8'", ("foo-bar", "1.0")),
        (
            "requests==2.31.0 --hash=sha256:58cd2187c01e70e6e26505bca751777aa9f2ee0b7f4300988b709f44e013003f",
            ("requests", "2.31.0"),
        ),
        ("requests==2.31.0  # security pin", ("requests", "2.31.0")),
        ("legacy===1.0-custom", ("legacy", "1.0-custom")),
    ],
)
def test_parse_requirement_gives_pins(text, expected):
    parsed = pin(text)
    assert (parsed.name, parsed.version) == expected
    assert parsed.text == text.strip()


@pytest.mark.parametrize(
    "text",
    [
        "requests",
        "requests>=2.31",
        "requests==2.*",
        "requests==2.31.0,!=2.31.1",
        "requests~=2.31",
        "requests @ https://example.org/requests-2.31.0-py3-none-any.whl",
        "-r other.txt",
        "-e .",
        "# just a comment",
        "",
        "not a requirement ==",
    ],
)
def test_parse_requirement_refuses_what_is_not_one_pin(text):
    assert parse_requirement(text) is None


# --- the OSV evaluation, literally ---------------------------------------------------------


def reference_is_vulnerable(version: str, events: list[dict], listed: list[str]) -> bool:
    """The schema's IsVulnerable pseudo-code for one ECOSYSTEM range, transcribed as written."""
    v = Version(version)
    if any(v == Version(item) for item in listed):
        return True
    limits = [event["limit"] for event in events if "limit" in event]
    if limits and not any(limit == "*" or v < Version(limit) for limit in limits):
        return False
    ordered = sorted(
        (event for event in events if "limit" not in event),
        key=lambda event: Version("0") if next(iter(event.values())) == "0" else Version(next(iter(event.values()))),
    )
    vulnerable = False
    for event in ordered:
        if "introduced" in event and (event["introduced"] == "0" or v >= Version(event["introduced"])):
            vulnerable = True
        elif "fixed" in event and v >= Version(event["fixed"]):  # noqa: SIM114 - as the pseudo-code reads
            vulnerable = False
        elif "last_affected" in event and v > Version(event["last_affected"]):
            vulnerable = False
    return vulnerable


BOUNDS = ["0", "0.5", "1.0", "1.0.1", "1.1a1", "1.1", "1.2.post1", "2.0", "2.1.dev3", "2.1", "3.0"]
PROBES = ["0.0.1.dev0", "0.1", "0.5", "0.9", "1.0", "1.0.0", "1.0.1", "1.1a1", "1.1", "1.1.5", "1.2"]
PROBES += ["1.2.post1", "1.9", "2.0", "2.0.0", "2.1.dev3", "2.1", "2.5", "3.0", "3.0.post1", "9.0"]


def random_range(rng) -> tuple[list[dict], list[str]]:
    """Distinct bounds (ties have no defined order in the spec), shuffled, any mix of kinds."""
    bounds = rng.sample(BOUNDS, rng.randint(1, 6))
    events = [{"introduced" if b == "0" else rng.choice(["introduced", "fixed", "last_affected"]): b} for b in bounds]
    events += [{"limit": rng.choice(["1.1", "2.0", "3.0", "*"])} for _ in range(rng.choice([0, 0, 0, 1, 2]))]
    listed = rng.sample(PROBES, rng.randint(0, 2)) if rng.random() < 0.3 else []
    return events, listed


def test_index_agrees_with_the_schema_pseudo_code_on_random_ranges():
    rng = random.Random(440)
    for n in range(400):
        events, listed = random_range(rng)
        advisory = osv(events, versions=listed)
        index = AdvisoryIndex([advisory])
        for probe in PROBES:
            expected = reference_is_vulnerable(probe, events, listed)
            found = bool(index.match([PinnedRequirement("foo-bar", probe)]))
            assert found == expected, (n, probe, events, listed)
