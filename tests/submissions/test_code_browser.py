"""The version's code pages in the admin: the diff, the file browser, one file, the download."""

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from governance.models import AuditEvent
from submissions import services as sub
from submissions.code_admin import MAX_RENDERED_DIFFS
from submissions.samples import plugin_archive

pytestmark = pytest.mark.django_db

UTIL_BEFORE = b"def helper():\n    return 1\n"
UTIL_AFTER = b"def helper():\n    return 2\n"
HOSTILE = b"x = '</pre><script>alert(1)</script>'\n"
LOGO = b"\x89PNG\x00\x00\x00\x01"
PAGE_QUERIES = 23  # a page: the admin's own ~10, ours ~13 (audit row included); the same for 3 files as for 60


def url(name: str, version, *args, query: str = "") -> str:
    return reverse(f"admin:submissions_pluginversion_{name}", args=[version.pk, *args]) + query


def upload(plugin, author, number: str, files: dict):
    return sub.version_create(plugin=plugin, artifact=plugin_archive(plugin.name, number, files=files), actor=author)


@pytest.fixture
def base(plugin, author):
    return upload(plugin, author, "1.0.0", {"acme_exporter/util.py": UTIL_BEFORE, "acme_exporter/old.py": b"1\n"})


@pytest.fixture
def head(plugin, author, base):
    files = {"acme_exporter/util.py": UTIL_AFTER, "acme_exporter/logo.png": LOGO, "acme_exporter/evil.py": HOSTILE}
    return upload(plugin, author, "1.1.0", files)


def events(version, action: str) -> list[dict]:
    rows = AuditEvent.objects.filter(object_type="submissions.pluginversion", object_id=str(version.pk), action=action)
    return [event.data for event in rows.order_by("seq")]


# -- the code browser ---------------------------------------------------------------------


def test_an_author_browses_the_tree_and_reads_a_file(client, head, author):
    client.force_login(author)
    tree = client.get(url("code", head))
    assert tree.status_code == 200
    for path in ("acme_exporter/util.py", "acme_exporter/logo.png", "plugin.toml", "docs/USAGE.md"):
        assert url("code_file", head, path).encode() in tree.content
    page = client.get(url("code_file", head, "acme_exporter/util.py"))
    assert page.status_code == 200
    html = page.content.decode()
    assert '<tr id="L1"><td class="warden-lineno"><a href="#L1">1</a></td>' in html
    assert '<tr id="L2">' in html and '<tr id="L3">' not in html
    assert '<span class="k">def</span>' in html  # highlighted as Python, by its name
    assert ".warden-code .k {" in html  # the style block, scoped
    assert events(head, "version.browse") == [
        {"revision": 1, "path": "/"},
        {"revision": 1, "path": "acme_exporter/util.py"},
    ]


def test_a_binary_file_is_described_not_rendered(client, head, author):
    client.force_login(author)
    page = client.get(url("code_file", head, "acme_exporter/logo.png"))
    assert page.status_code == 200
    assert b"A binary file: not shown." in page.content
    assert head.revisions.get().files["acme_exporter/logo.png"]["sha256"].encode() in page.content
    assert b'id="L1"' not in page.content


def test_hostile_content_is_inert_in_the_code_browser(client, plugin, author):
    version = upload(plugin, author, "1.0.0", {"acme_exporter/<b>x</b>.py": HOSTILE})
    client.force_login(author)
    page = client.get(url("code_file", version, "acme_exporter/<b>x</b>.py"))
    assert page.status_code == 200
    assert b"<script>alert" not in page.content and b"<b>x</b>" not in page.content
    assert b"&lt;/pre&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in page.content
    tree = client.get(url("code", version))
    assert b"<b>" not in tree.content
    assert b'<span class="warden-dir">acme_exporter/&lt;b&gt;x&lt;/</span>b&gt;.py' in tree.content  # "/": a directory


@pytest.mark.parametrize(
    "path",
    ["nope.py", "..%2Fplugin.toml", "%2E%2E/plugin.toml", "acme_exporter", "acme_exporter/", "./plugin.toml", "%2Fetc"],
)
def test_a_path_that_is_not_a_file_of_the_archive_is_404(client, head, author, path):
    client.force_login(author)
    base_url = url("code", head)
    assert client.get(base_url + path).status_code == 404
    assert events(head, "version.browse") == []


@pytest.mark.parametrize("revision", ["2", "abc", "0", "99999999999999999999999"])
def test_an_unknown_revision_is_404(client, head, author, revision):
    client.force_login(author)
    assert client.get(url("code", head, query=f"?revision={revision}")).status_code == 404
    assert client.get(url("code_file", head, "plugin.toml", query=f"?revision={revision}")).status_code == 404


def test_an_unknown_or_huge_version_id_is_404(client, head, author):
    client.force_login(author)
    for version_id in ("99999", "99999999999999999999999"):
        for page in ("diff/", "code/", "code/plugin.toml", "download/"):
            assert client.get(f"/admin/submissions/pluginversion/{version_id}/{page}").status_code == 404, page


def test_a_revision_whose_archive_could_not_be_indexed_says_so(client, base, head, author):
    revision = head.revisions.get()
    revision.files = {}  # as the migration leaves a revision whose archive was missing
    revision.save(update_fields=["files"])
    client.force_login(author)
    tree = client.get(url("code", head))
    assert b"could not be indexed: its files are unknown" in tree.content
    assert client.get(url("code_file", head, "plugin.toml")).status_code == 404
    page = client.get(url("diff", head, query=f"?base={base.revisions.get().pk}"))
    assert page.status_code == 200
    assert b"could not be indexed, so its files are unknown" in page.content


# -- the diff -----------------------------------------------------------------------------


def test_the_diff_page_lists_changes_and_renders_each_diff(client, base, head, author):
    client.force_login(author)
    base_revision, head_revision = base.revisions.get(), head.revisions.get()
    page = client.get(url("diff", head, query=f"?base={base_revision.pk}"))
    assert page.status_code == 200
    html = page.content.decode()
    assert "2 added, 1 removed, 2 changed, 3 unchanged." in html
    assert '<span class="gi">+    return 2</span>' in html
    assert "binary, 8 bytes" in html  # the logo, listed
    assert "&lt;/pre&gt;&lt;script&gt;" in html and "<script>alert" not in html
    [data] = events(head, "version.diff")
    assert (data["base_revision"], data["head_revision"]) == (base_revision.pk, head_revision.pk)
    assert sorted(data["paths"]) == [
        "acme_exporter/evil.py",
        "acme_exporter/logo.png",
        "acme_exporter/old.py",
        "acme_exporter/util.py",
        "plugin.toml",
    ]


def test_the_diff_page_defaults_to_the_last_approved_version(client, make_approved, plugin, author):
    approved = make_approved("1.0.0", files={"acme_exporter/util.py": UTIL_BEFORE})
    candidate = upload(plugin, author, "1.1.0", {"acme_exporter/util.py": UTIL_AFTER})
    client.force_login(author)
    page = client.get(url("diff", candidate))
    assert page.status_code == 200
    assert b"the last approved version of acme/acme-exporter (approved)" in page.content
    assert b'<span class="gd">-    return 1</span>' in page.content
    assert events(candidate, "version.diff")[0]["base_revision"] == approved.revisions.get().pk


def test_a_first_version_has_nothing_to_compare_with(client, base, author):
    client.force_login(author)
    page = client.get(url("diff", base))
    assert page.status_code == 200
    assert b"Nothing to compare revision 1 with" in page.content
    assert events(base, "version.diff") == [
        {"base_revision": None, "head_revision": base.revisions.get().pk, "paths": []}
    ]


def test_a_wrong_base_is_a_clear_error(client, head, author, other_author, globex):
    other_plugin = sub.plugin_create(
        organisation=globex, name="globex-tool", category="data-connector", actor=other_author
    )
    elsewhere = upload(other_plugin, other_author, "1.0.0", {}).revisions.get()
    client.force_login(author)
    for query, status, message in (
        ("?base=abc", 400, "?base= names a revision by its id (a number), not &#x27;abc&#x27;."),
        ("?base=", 400, "?base= names a revision by its id"),
        (f"?base={elsewhere.pk}", 404, f"there is no revision {elsewhere.pk} of acme/acme-exporter that you may see"),
        ("?base=99999", 404, "there is no revision 99999 of acme/acme-exporter"),
        (f"?head={elsewhere.pk}", 404, f"?head={elsewhere.pk}: there is no revision"),
    ):
        page = client.get(url("diff", head, query=query))
        assert page.status_code == status, query
        assert message.encode() in page.content, query
    assert events(head, "version.diff") == []


def test_a_hostile_archive_with_many_changed_files_keeps_the_page_small(
    client, plugin, author, django_assert_max_num_queries
):
    many = 60
    old = upload(plugin, author, "1.0.0", {f"m/f{n}.py": b"A = 1\n" * 10 for n in range(many)})
    new = upload(plugin, author, "1.1.0", {f"m/f{n}.py": b"A = 2\n" * 10 for n in range(many)})
    client.force_login(author)
    diff_url = url("diff", new, query=f"?base={old.revisions.get().pk}")
    with django_assert_max_num_queries(PAGE_QUERIES):
        page = client.get(diff_url)
    html = page.content.decode()
    assert html.count('class="warden-code warden-diff"') == MAX_RENDERED_DIFFS
    assert f"{many + 1 - MAX_RENDERED_DIFFS} more files: diff truncated." in html  # + plugin.toml
    assert len(events(new, "version.diff")[0]["paths"]) == MAX_RENDERED_DIFFS


def test_page_queries_do_not_grow_with_the_files(client, base, head, author, django_assert_max_num_queries):
    client.force_login(author)
    diff_url = url("diff", head, query=f"?base={base.revisions.get().pk}")
    with django_assert_max_num_queries(PAGE_QUERIES):
        assert client.get(diff_url).status_code == 200
    with django_assert_max_num_queries(PAGE_QUERIES):
        assert client.get(url("code", head)).status_code == 200
    with django_assert_max_num_queries(PAGE_QUERIES):
        assert client.get(url("code_file", head, "acme_exporter/util.py")).status_code == 200


# -- the download -------------------------------------------------------------------------


def test_the_author_downloads_the_artifact_as_an_attachment(client, head, author):
    client.force_login(author)
    response = client.get(url("download", head))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"] == 'attachment; filename="acme-exporter-1.1.0.zip"'
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"] == "sandbox"  # its own policy, not the pages'
    revision = head.revisions.get()
    assert b"".join(response.streaming_content) == revision.artifact.open("rb").read()
    assert events(head, "version.download") == [{"revision": 1, "sha256": revision.sha256}]


def test_reviewers_and_the_board_download(client, in_review, security, board, platform_admin):
    for user in (security, board, platform_admin):
        client.force_login(user)
        assert client.get(url("download", in_review)).status_code == 200, user
        assert client.get(url("code", in_review)).status_code == 200, user
    assert len(events(in_review, "version.download")) == 3


def test_who_may_see_but_holds_no_role_may_browse_but_not_download(client, head, outsider):
    outsider.user_permissions.add(Permission.objects.get(codename="view_pluginversion"))
    client.force_login(outsider)
    assert client.get(url("code", head)).status_code == 200
    assert b"Download the artifact" not in client.get(url("code", head)).content
    assert client.get(url("download", head)).status_code == 403
    assert events(head, "version.download") == []


@pytest.mark.parametrize("who", ["other_author", "outsider"])
def test_who_may_not_see_the_version_gets_404_on_every_page(client, request, base, head, who):
    client.force_login(request.getfixturevalue(who))
    for page_url in (
        url("diff", head),
        url("diff", head, query=f"?base={base.revisions.get().pk}"),
        url("code", head),
        url("code_file", head, "plugin.toml"),
        url("code_file", head, "nope.py"),
        url("download", head),
    ):
        assert client.get(page_url).status_code == 404, page_url
    assert not AuditEvent.objects.filter(action__in=["version.browse", "version.diff", "version.download"]).exists()


def test_an_author_may_not_diff_against_another_organisations_revision(client, head, other_author, globex, author):
    other_plugin = sub.plugin_create(
        organisation=globex, name="globex-tool", category="data-connector", actor=other_author
    )
    theirs = upload(other_plugin, other_author, "1.0.0", {})
    client.force_login(other_author)  # their own revision as head, ours as the page: still 404
    assert client.get(url("diff", head, query=f"?head={theirs.revisions.get().pk}")).status_code == 404


@pytest.mark.parametrize(
    ("path", "highlighted"),
    [("plugin.py", True), ("setup.cfg", False), ("Test.aj", False), ("evil.adl", False), ("Makefile", False)],
)
def test_only_lexers_that_stay_linear_on_hostile_input_highlight_files(path, highlighted):
    # INI, AspectJ, ADL and many other Pygments lexers backtrack on input made for them (8 s to
    # 100 s for 50 KB): the plugin chooses the lexer by naming its files, so only a few are used.
    from pygments.lexers import TextLexer

    from submissions.highlight import MAX_HIGHLIGHT_CHARS, lexer_for

    assert (not isinstance(lexer_for(path, 100), TextLexer)) is highlighted
    assert isinstance(lexer_for("plugin.py", MAX_HIGHLIGHT_CHARS + 1), TextLexer)  # too long: plain text
