"""The file index of a revision (made at intake, backfilled by a migration) and reading one
member back through intake's checked walk."""

import hashlib
import importlib
import io
import zipfile

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from governance.errors import NotFound, ValidationFailed
from reviews import services as review
from submissions import services as sub
from submissions.artifact_files import ArtifactUnavailable, index_archive, read_member, read_members
from submissions.models import VersionRevision
from submissions.samples import PLUGIN_SOURCE, plugin_archive
from tests.conftest import open_review

pytestmark = pytest.mark.django_db

MIGRATION = "0003_revision_file_index"
EXTRA = {
    "acme_exporter/logo.png": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
    "acme_exporter/latin1.txt": "caf\xe9".encode("latin-1"),
    "docs/ÜBER.md": "Grüße\n".encode(),
}


def test_the_index_is_stored_at_upload(plugin, author):
    version = sub.version_create(
        plugin=plugin, artifact=plugin_archive(plugin.name, "1.4.0", files=EXTRA), actor=author
    )
    files = version.revisions.get().files
    assert sorted(files) == [
        "acme_exporter/__init__.py",
        "acme_exporter/latin1.txt",
        "acme_exporter/logo.png",
        "acme_exporter/plugin.py",
        "docs/USAGE.md",
        "docs/ÜBER.md",
        "plugin.toml",
    ]
    source = PLUGIN_SOURCE.encode()
    assert files["acme_exporter/plugin.py"] == {
        "size": len(source),
        "sha256": hashlib.sha256(source).hexdigest(),
        "text": True,
    }
    assert files["acme_exporter/__init__.py"]["text"] is True  # empty: valid UTF-8
    assert files["docs/ÜBER.md"]["text"] is True
    assert files["acme_exporter/logo.png"]["text"] is False  # NUL bytes
    assert files["acme_exporter/latin1.txt"]["text"] is False  # not UTF-8


def test_a_resubmitted_artifact_gets_its_own_index(
    plugin, author, pipeline, platform_admin, django_capture_on_commit_callbacks
):
    version = sub.version_create(plugin=plugin, artifact=plugin_archive(plugin.name, "1.4.0"), actor=author)
    with django_capture_on_commit_callbacks(execute=True):
        sub.version_submit(version=version, actor=author)
    review.stage_request_changes(review=open_review(version, "eligibility"), actor=platform_admin, reason="Fix it.")
    fixed = plugin_archive(plugin.name, "1.4.0", files={"acme_exporter/fix.py": b"FIXED = True\n"})
    with django_capture_on_commit_callbacks(execute=True):
        sub.version_resubmit(version=version, actor=author, reason="Fixed.", artifact=fixed)
    first, second = VersionRevision.objects.filter(version=version).order_by("number")
    assert "acme_exporter/fix.py" not in first.files
    assert second.files["acme_exporter/fix.py"]["size"] == len(b"FIXED = True\n")
    assert set(second.files) - set(first.files) == {"acme_exporter/fix.py"}


def test_the_migration_backfills_indexes_and_goes_on_past_a_missing_archive(plugin, author):
    """Run against the migration's own historical models (the state after it)."""
    older = sub.version_create(plugin=plugin, artifact=plugin_archive(plugin.name, "1.0.0"), actor=author)
    newer = sub.version_create(plugin=plugin, artifact=plugin_archive(plugin.name, "1.1.0", files=EXTRA), actor=author)
    expected = newer.revisions.get().files
    for revision in VersionRevision.objects.filter(version__in=[older, newer]):
        revision.files = {}
        revision.save(update_fields=["files"])
    default_storage.delete(older.revisions.get().artifact.name)  # this test's own file

    apps = MigrationExecutor(connection).loader.project_state(("submissions", MIGRATION)).apps
    importlib.import_module(f"submissions.migrations.{MIGRATION}").index_existing_revisions(apps, None)

    assert older.revisions.get().files == {}
    assert newer.revisions.get().files == expected
    assert len(expected) == 7


def test_index_archive_goes_through_the_checked_walk():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("plugin.toml", b"")
        archive.writestr("../escape.py", b"print('out')\n")
    with pytest.raises(ValidationFailed) as refused:
        index_archive(SimpleUploadedFile("x.zip", buffer.getvalue()), "x.zip")
    assert {e["code"] for e in refused.value.errors} == {"path_traversal"}


def test_read_member_returns_the_bytes_of_an_indexed_path(draft):
    revision = draft.revisions.get()
    assert read_member(revision, "acme_exporter/plugin.py") == PLUGIN_SOURCE.encode()
    both = read_members(revision, ["plugin.toml", "docs/USAGE.md"])
    assert sorted(both) == ["docs/USAGE.md", "plugin.toml"]
    assert both["plugin.toml"].startswith(b"[plugin]")


@pytest.mark.parametrize("path", ["../plugin.toml", "/plugin.toml", "acme_exporter", "nope.py", "./plugin.toml"])
def test_read_member_refuses_a_path_outside_the_index(draft, path):
    with pytest.raises(NotFound):
        read_member(draft.revisions.get(), path)


def test_read_member_refuses_an_archive_that_changed_in_storage(draft):
    revision = draft.revisions.get()
    with default_storage.open(revision.artifact.name, "wb") as stored:
        stored.write(plugin_archive("acme-exporter", "1.4.0", files={"x.py": b"changed\n"}).read())
    with pytest.raises(ArtifactUnavailable, match="no longer has its SHA-256"):
        read_member(revision, "plugin.toml")


def test_read_member_of_a_missing_archive_is_unavailable(draft):
    revision = draft.revisions.get()
    default_storage.delete(revision.artifact.name)
    with pytest.raises(ArtifactUnavailable, match="cannot be read"):
        read_member(revision, "plugin.toml")
