"""What changed between two revisions: files from the indexes, the manifest as before/after
rows, each file's highlighted diff, and which revision a version is compared with."""

import re

import pytest
from django.core.files.storage import default_storage

from decisions import deployment
from governance.errors import NotFound
from reviews import services as review
from submissions import services as sub
from submissions.diff import (
    MAX_DIFF_INPUT_LINES,
    MAX_DIFF_LINES,
    MAX_PAGE_INPUT_LINES,
    base_revision_for,
    file_diff,
    file_diffs,
    manifest_changes,
    revision_changes,
)
from submissions.samples import MANIFEST_TEMPLATE, plugin_archive
from tests.conftest import open_review

pytestmark = pytest.mark.django_db

HOSTILE = b"x = '</pre><script>alert(1)</script>'\n<img src=x onerror=alert(2)>\n"
BEFORE = {
    "acme_exporter/old.py": b"OLD = 1\n",
    "acme_exporter/util.py": b"def helper():\n    return 1\n",
    "acme_exporter/logo.png": b"\x89PNG\x00\x00\x00\x01ab",
}
AFTER = {
    "acme_exporter/new.py": b"NEW = 2\n",
    "acme_exporter/util.py": b"def helper():\n    return 2\n",
    "acme_exporter/logo.png": b"\x89PNG\x00\x00\x00\x02abcd",
}


def manifest(number: str) -> str:
    return MANIFEST_TEMPLATE.format(
        name="acme-exporter", version=number, module="acme_exporter", category="data-connector"
    )


def upload(plugin, author, number: str, files: dict, manifest_text: str | None = None):
    archive = plugin_archive(plugin.name, number, files=files, manifest=manifest_text)
    return sub.version_create(plugin=plugin, artifact=archive, actor=author).revisions.get()


@pytest.fixture
def pair(plugin, author):
    base = upload(plugin, author, "1.0.0", BEFORE)
    widened = (
        manifest("1.1.0")
        .replace("network = []", 'network = ["api.acme.example:443"]')
        .replace("subprocess = false", "subprocess = true")
        .replace('categories = ["usage"]', 'categories = ["usage", "pii"]')
        .replace("requirements = []", 'requirements = ["requests==2.32.0", "PyYAML==6.0.1"]')
        .replace("acme_exporter.plugin:Plugin", "acme_exporter.new:Plugin")
    )
    head = upload(plugin, author, "1.1.0", AFTER, widened)
    return base, head


def test_files_added_removed_and_changed_come_from_the_indexes(pair, django_assert_num_queries):
    base, head = pair
    for revision in pair:  # nothing is read from the archives: they may as well be gone
        default_storage.delete(revision.artifact.name)
    with django_assert_num_queries(0):
        changes = revision_changes(base, head)
    assert [c.path for c in changes.added] == ["acme_exporter/new.py"]
    assert [c.path for c in changes.removed] == ["acme_exporter/old.py"]
    assert [c.path for c in changes.changed] == ["acme_exporter/logo.png", "acme_exporter/util.py", "plugin.toml"]
    assert changes.unchanged == 3  # __init__.py, plugin.py, docs/USAGE.md
    logo = changes.changed[0]
    assert (logo.text, logo.summary) == (False, "binary, 10 → 12 bytes")
    assert changes.added[0].summary == "text, 8 bytes"
    assert changes.notes == ()


def test_the_manifest_changes_are_rows_of_before_and_after(pair):
    changes = revision_changes(*pair)
    rows = [(m.area, m.field, m.kind, m.before, m.after, m.added, m.widens) for m in changes.manifest]
    assert rows == [
        ("plugin", "entrypoint", "changed", "acme_exporter.plugin:Plugin", "acme_exporter.new:Plugin", (), False),
        ("permissions", "network", "changed", "none", "api.acme.example:443", ("api.acme.example:443",), True),
        ("permissions", "subprocess", "changed", "no", "yes", (), True),
        ("data", "categories", "changed", "usage", "usage, pii", ("pii",), True),
        ("dependencies", "pyyaml", "added", "—", "PyYAML==6.0.1", (), False),
        ("dependencies", "requests", "added", "—", "requests==2.32.0", (), False),
    ]
    assert [(m.area, m.field) for m in changes.widened] == [
        ("permissions", "network"),
        ("permissions", "subprocess"),
        ("data", "categories"),
    ]


def test_dependencies_are_matched_by_name():
    before = {"dependencies": {"requirements": ["requests==2.31.0", "urllib3==2.0.0", "idna==3.6"]}}
    after = {"dependencies": {"requirements": ["Requests==2.32.0", "idna==3.6", "certifi==2024.2.2"]}}
    rows = [(m.field, m.kind, m.before, m.after) for m in manifest_changes(before, after)]
    assert rows == [
        ("certifi", "added", "—", "certifi==2024.2.2"),
        ("requests", "changed", "requests==2.31.0", "Requests==2.32.0"),
        ("urllib3", "removed", "urllib3==2.0.0", "—"),
    ]


@pytest.mark.parametrize(
    ("before", "after", "widens"),
    [
        ({"permissions": {"filesystem": ["write:/tmp"]}}, {"permissions": {"filesystem": ["read:/data"]}}, True),
        ({"permissions": {"environment": ["A"]}}, {"permissions": {"environment": []}}, False),
        ({"permissions": {"subprocess": True}}, {"permissions": {"subprocess": False}}, False),
        ({"data": {"residency": ["eu"]}}, {"data": {"residency": ["eu", "us"]}}, True),
        ({"data": {"encryption_at_rest": True}}, {"data": {"encryption_at_rest": False}}, True),
        ({"data": {"retention_days": 30}}, {"data": {"retention_days": 90}}, True),
        ({"data": {"retention_days": 90}}, {"data": {"retention_days": 30}}, False),
        ({"plugin": {"host_api": ">=2,<3"}}, {"plugin": {"host_api": ">=3,<4"}}, False),
    ],
)
def test_what_asks_for_more(before, after, widens):
    [row] = manifest_changes(before, after)
    assert row.widens is widens


def test_an_identical_manifest_or_a_reordered_list_is_no_change():
    manifest_text = {"permissions": {"network": ["a.example:443", "b.example:443"], "subprocess": False}}
    reordered = {"permissions": {"network": ["b.example:443", "a.example:443"], "subprocess": False}}
    assert manifest_changes(manifest_text, manifest_text) == ()
    assert manifest_changes(manifest_text, reordered) == ()


def test_a_changed_text_file_is_a_highlighted_unified_diff(pair):
    html = file_diff(*pair, "acme_exporter/util.py")
    assert html.startswith('<div class="warden-code warden-diff"><pre>')
    assert '<span class="gd">-    return 1</span>' in html
    assert '<span class="gi">+    return 2</span>' in html


def test_a_binary_file_is_described_not_diffed(pair):
    html = file_diff(*pair, "acme_exporter/logo.png")
    assert html == '<p class="warden-diff-note">Not shown: binary, 10 → 12 bytes.</p>'


def test_an_unchanged_or_unknown_path_has_no_diff(pair):
    for path in ("acme_exporter/plugin.py", "../plugin.toml", "nope.py"):
        with pytest.raises(NotFound):
            file_diff(*pair, path)


def test_hostile_content_and_names_come_out_inert(plugin, author):
    base = upload(plugin, author, "1.0.0", {})
    head = upload(plugin, author, "1.1.0", {"acme_exporter/<script>x</script>.py": HOSTILE})
    html = file_diff(base, head, "acme_exporter/<script>x</script>.py")
    assert set(re.findall(r"</?([a-zA-Z]+)", html)) == {"div", "pre", "span"}  # Pygments' own, nothing else
    assert "&lt;/pre&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "+++ b/acme_exporter/&lt;script&gt;x&lt;/script&gt;.py" in html


def test_a_long_diff_is_cut_with_a_note(plugin, author):
    base = upload(plugin, author, "1.0.0", {"big.txt": b"".join(b"line %d\n" % n for n in range(3000))})
    head = upload(plugin, author, "1.1.0", {"big.txt": b"".join(b"LINE %d\n" % n for n in range(3000))})
    big = [c for c in revision_changes(base, head).changed if c.path == "big.txt"]
    [diff] = file_diffs(base, head, big)
    assert (diff.lines, diff.note) == (MAX_DIFF_LINES, f"Diff truncated after {MAX_DIFF_LINES:,} lines.")
    assert diff.html.count("\n") == MAX_DIFF_LINES + 1  # and one after </div>
    budgeted = file_diffs(base, head, [*big, *big], max_lines=1_200)
    assert [d.lines for d in budgeted] == [1_000, 200]
    assert [d.note for d in file_diffs(base, head, big, max_lines=0)] == [
        "Not shown: the page shows a limited number of diff lines."
    ]


def test_only_line_endings_changed(plugin, author):
    base = upload(plugin, author, "1.0.0", {"a.txt": b"one\ntwo\n"})
    head = upload(plugin, author, "1.1.0", {"a.txt": b"one\r\ntwo\r\n"})
    assert file_diff(base, head, "a.txt") == (
        '<p class="warden-diff-note">The files differ only in their line endings.</p>'
    )


# -- which revision a version is compared with -----------------------------------------


def test_the_base_is_the_last_approved_earlier_version(make_approved, plugin, author, board):
    first = make_approved("1.0.0")
    second = make_approved("1.1.0")
    candidate = sub.version_create(plugin=plugin, artifact=plugin_archive(plugin.name, "1.2.0"), actor=author)
    assert base_revision_for(candidate) == second.revisions.get()
    deployment.version_revoke(version=second, actor=board, reason="Leaks tokens.")
    assert base_revision_for(candidate) == first.revisions.get()  # a revoked approval does not count
    assert base_revision_for(first) is None  # nothing approved before the first


def test_a_later_approved_version_is_no_base(make_approved, draft):
    make_approved("1.5.0")
    assert base_revision_for(draft) is None  # draft is 1.4.0, uploaded before 1.5.0


def test_without_an_approved_version_the_base_is_the_previous_revision(
    plugin, author, pipeline, platform_admin, django_capture_on_commit_callbacks
):
    version = sub.version_create(plugin=plugin, artifact=plugin_archive(plugin.name, "1.4.0"), actor=author)
    assert base_revision_for(version) is None
    with django_capture_on_commit_callbacks(execute=True):
        sub.version_submit(version=version, actor=author)
    review.stage_request_changes(review=open_review(version, "eligibility"), actor=platform_admin, reason="Fix.")
    fixed = plugin_archive(plugin.name, "1.4.0", files={"acme_exporter/fix.py": b"X = 1\n"})
    with django_capture_on_commit_callbacks(execute=True):
        sub.version_resubmit(version=version, actor=author, reason="Fixed.", artifact=fixed)
    version.refresh_from_db()
    base = base_revision_for(version)
    assert (base.version_id, base.number) == (version.pk, 1)
    assert [c.path for c in revision_changes(base, version.revisions.get(number=2)).added] == ["acme_exporter/fix.py"]


def test_a_file_made_to_stall_difflib_is_not_compared_and_a_page_compares_a_bounded_number_of_lines(plugin, author):
    # repeated lines, reversed: difflib's work grows with the product of the sides (30 s at 20,000 lines)
    lines = [b"x%d\n" % (i % 105) for i in range(MAX_DIFF_INPUT_LINES + 1)]
    base = upload(
        plugin, author, "1.0.0", {"stall.py": b"".join(lines), **{f"m{i}.py": b"a\n" * 2_000 for i in range(9)}}
    )
    head = upload(
        plugin,
        author,
        "1.1.0",
        {"stall.py": b"".join(reversed(lines)), **{f"m{i}.py": b"b\n" * 2_000 for i in range(9)}},
    )
    changed = {c.path: c for c in revision_changes(base, head).changed}
    [stall] = file_diffs(base, head, [changed["stall.py"]])
    assert not stall.html and stall.note.startswith("Too long to diff here")
    many = file_diffs(base, head, [changed[f"m{i}.py"] for i in range(9)])
    compared = [d for d in many if d.html]
    assert len(compared) == MAX_PAGE_INPUT_LINES // 4_000  # each pair is 4,000 lines of the page's budget
    assert all("as many lines as it may" in d.note for d in many if not d.html)
