"""Hostile and broken uploads are refused with every reason, leaving no row and no file."""

import io
import os
import stat
import tarfile
import zipfile

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile

from governance.errors import ValidationFailed
from submissions import services as sub
from submissions.intake import ArchiveLimits, extract_artifact
from submissions.models import PluginVersion
from submissions.samples import MANIFEST_TEMPLATE, plugin_archive

pytestmark = pytest.mark.django_db

GOOD_MANIFEST = MANIFEST_TEMPLATE.format(
    name="acme-exporter", version="1.0.0", module="acme_exporter", category="data-connector"
).encode()


def zip_upload(
    members: dict[str, bytes],
    *,
    name: str = "p.zip",
    modes: dict[str, int] | None = None,
    compression: int = zipfile.ZIP_DEFLATED,
) -> SimpleUploadedFile:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for path, data in members.items():
            info = zipfile.ZipInfo(path)
            info.compress_type = compression
            if modes and path in modes:
                info.external_attr = modes[path] << 16
            archive.writestr(info, data)
    return SimpleUploadedFile(name, buffer.getvalue())


def tar_upload(members: list[tarfile.TarInfo | tuple[str, bytes]]) -> SimpleUploadedFile:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for member in members:
            if isinstance(member, tarfile.TarInfo):
                archive.addfile(member)
            else:
                info = tarfile.TarInfo(member[0])
                info.size = len(member[1])
                archive.addfile(info, io.BytesIO(member[1]))
    return SimpleUploadedFile("p.tar.gz", buffer.getvalue())


def stored_files() -> set[str]:
    return {os.path.join(root, f) for root, _dirs, files in os.walk(settings.MEDIA_ROOT) for f in files}


@pytest.fixture
def refuse(plugin, author):
    """Upload through the service; assert the refusal's codes and that nothing was left."""

    def check(upload, code: str, *error_codes: str) -> ValidationFailed:
        before = stored_files()
        with pytest.raises(ValidationFailed) as refusal:
            sub.version_create(plugin=plugin, artifact=upload, actor=author)
        assert refusal.value.code == code
        assert {e["code"] for e in refusal.value.errors} >= set(error_codes)
        assert not PluginVersion.objects.exists()
        assert stored_files() == before
        return refusal.value

    return check


def test_clean_plugin_is_accepted(plugin, author):
    version = sub.version_create(plugin=plugin, artifact=plugin_archive(plugin.name, "1.0.0"), actor=author)
    assert version.manifest["permissions"]["subprocess"] is False


def test_zip_bomb(refuse):
    bomb = zip_upload({"plugin.toml": GOOD_MANIFEST, "bomb.bin": b"\0" * (30 * 1024 * 1024)})
    assert bomb.size < 100 * 1024  # 30 MB of zeros deflates to ~30 KB
    refuse(bomb, "invalid_archive", "file_too_large")


def test_zip_bomb_within_the_per_file_limit_is_refused_by_ratio(refuse, settings):
    settings.WARDEN_ARCHIVE_LIMITS = {**settings.WARDEN_ARCHIVE_LIMITS, "max_file_bytes": 50 * 1024 * 1024}
    refuse(
        zip_upload({"plugin.toml": GOOD_MANIFEST, "bomb.bin": b"\0" * (10 * 1024 * 1024)}),
        "invalid_archive",
        "compression_ratio",
    )


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("../evil.py", "path_traversal"),
        ("pkg/../../evil.py", "path_traversal"),
        ("/etc/cron.d/evil", "absolute_path"),
        ("C:/Windows/evil.dll", "absolute_path"),
        ("pkg\\..\\evil.py", "path_traversal"),
        ("/".join(["d"] * 30) + "/deep.py", "too_deep"),
    ],
)
def test_bad_paths(refuse, path, code):
    refuse(zip_upload({"plugin.toml": GOOD_MANIFEST, path: b"x"}), "invalid_archive", code)


def test_every_reason_is_reported_at_once(refuse):
    refusal = refuse(zip_upload({"plugin.toml": GOOD_MANIFEST, "../a": b"x", "/b": b"y"}), "invalid_archive")
    assert [(e["field"], e["code"]) for e in refusal.errors] == [("../a", "path_traversal"), ("/b", "absolute_path")]


def test_zip_symlink(refuse):
    refuse(
        zip_upload({"plugin.toml": GOOD_MANIFEST, "link": b"/etc/passwd"}, modes={"link": stat.S_IFLNK | 0o777}),
        "invalid_archive",
        "symlink_refused",
    )


def test_tar_links_and_devices(refuse):
    symlink = tarfile.TarInfo("link")
    symlink.type, symlink.linkname = tarfile.SYMTYPE, "/etc/passwd"
    hardlink = tarfile.TarInfo("hard")
    hardlink.type, hardlink.linkname = tarfile.LNKTYPE, "plugin.toml"
    device = tarfile.TarInfo("dev")
    device.type = tarfile.CHRTYPE
    refuse(
        tar_upload([("plugin.toml", GOOD_MANIFEST), symlink, hardlink, device]),
        "invalid_archive",
        "symlink_refused",
        "hardlink_refused",
        "device_refused",
    )


def test_ten_thousand_tiny_files(refuse):
    members = {"plugin.toml": GOOD_MANIFEST, **{f"f/{i}.txt": b"" for i in range(10_000)}}
    refuse(zip_upload(members, compression=zipfile.ZIP_STORED), "invalid_archive", "too_many_files")


def test_duplicate_names(refuse):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("plugin.toml", GOOD_MANIFEST)
        archive.writestr("a.py", b"1")
        with pytest.warns(UserWarning, match="Duplicate name"):
            archive.writestr("a.py", b"2")
    refuse(SimpleUploadedFile("p.zip", buffer.getvalue()), "invalid_archive", "duplicate_name")


def test_non_utf8_name(refuse):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("plugin.toml", GOOD_MANIFEST)
        archive.writestr("caf\u00e9.py", b"x")
    # Rewrite the UTF-8 name as Latin-1 bytes (padded to the same length) and clear the
    # UTF-8 flag (bit 11) in the local and central headers.
    raw = bytearray(buffer.getvalue().replace("caf\u00e9.py".encode(), b"caf\xe9.py\x20"))
    for signature, flag_offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        start = raw.find(signature, 0)
        while start != -1:
            raw[start + flag_offset + 1] &= ~0x08
            start = raw.find(signature, start + 4)
    refuse(SimpleUploadedFile("p.zip", bytes(raw)), "invalid_archive", "non_utf8_name")


def test_oversized_upload(refuse, settings):
    settings.WARDEN_MAX_ARTIFACT_BYTES = 1024
    refuse(plugin_archive("acme-exporter", "1.0.0", files={"pad.bin": os.urandom(4096)}), "archive_too_large")


@pytest.mark.parametrize(
    ("upload", "code"),
    [
        (SimpleUploadedFile("p.zip", b""), "empty_archive"),
        (SimpleUploadedFile("p.exe", b"MZ"), "unsupported_archive"),
        (SimpleUploadedFile("p.zip", b"PK\x03\x04 not really"), "corrupt_archive"),
        (SimpleUploadedFile("p.tar.gz", b"\x1f\x8b garbage"), "corrupt_archive"),
    ],
)
def test_unreadable_uploads(refuse, upload, code):
    refuse(upload, code)


def test_truncated_archive(refuse):
    data = plugin_archive("acme-exporter", "1.0.0").read()
    refuse(SimpleUploadedFile("p.zip", data[: len(data) // 2]), "corrupt_archive")


def test_empty_zip(refuse):
    refuse(zip_upload({}), "invalid_archive", "empty_archive")


def test_corrupt_deflate_data(refuse):
    data = bytearray(plugin_archive("acme-exporter", "1.0.0").read())
    start = data.index(b"plugin.toml") + len(b"plugin.toml")
    data[start : start + 40] = b"\xff" * 40  # inside the compressed manifest
    refuse(SimpleUploadedFile("p.zip", bytes(data)), "corrupt_archive")


def test_encrypted_member(refuse):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("plugin.toml", GOOD_MANIFEST)
    data = bytearray(buffer.getvalue())
    for offset in (6, data.rindex(b"PK\x01\x02") + 8):  # the "encrypted" flag bit in both headers
        data[offset] |= 0x01
    refuse(SimpleUploadedFile("p.zip", bytes(data)), "corrupt_archive")


def test_manifest_missing(refuse):
    refuse(zip_upload({"README.md": b"no manifest"}), "invalid_archive", "manifest_missing")


def test_manifest_not_at_the_root(refuse):
    refuse(zip_upload({"sub/plugin.toml": GOOD_MANIFEST}), "invalid_archive", "manifest_missing")


@pytest.mark.parametrize(
    ("text", "field"),
    [
        (GOOD_MANIFEST.replace(b'version = "1.0.0"', b'version = "1.0.0' + b".0" * 40 + b'"'), "plugin.version"),
        (GOOD_MANIFEST.replace(b'version = "1.0.0"', b'version = "not-pep440"'), "plugin.version"),
        (GOOD_MANIFEST.replace(b'host_api = ">=2.0,<3"', b'host_api = "two"'), "plugin.host_api"),
        (GOOD_MANIFEST.replace(b"subprocess = false", b'subprocess = "no"'), "permissions.subprocess"),
        (GOOD_MANIFEST.replace(b"network = []", b'network = ["no port"]'), "permissions.network[0]"),
        (GOOD_MANIFEST.replace(b"[data]", b"[nodata]"), "data"),
        (
            GOOD_MANIFEST.replace(b'entrypoint = "acme_exporter.plugin:Plugin"', b'entrypoint = "a\\u0000b"'),
            "plugin.toml",
        ),
        (GOOD_MANIFEST.replace(b'usage = "docs/USAGE.md"', b'usage = "../../etc/passwd"'), "docs.usage"),
        (b"not toml at all [", "plugin.toml"),
    ],
)
def test_invalid_manifests_name_the_field(refuse, text, field):
    refusal = refuse(zip_upload({"plugin.toml": text}), "invalid_manifest")
    assert field in [e["field"] for e in refusal.errors], refusal.errors


def test_toml_dates_are_kept_as_text(plugin, author):
    text = GOOD_MANIFEST.decode() + "\n[release]\ndate = 2026-11-29\n"
    version = sub.version_create(plugin=plugin, artifact=zip_upload({"plugin.toml": text.encode()}), actor=author)
    assert version.manifest["release"]["date"] == "2026-11-29"


def test_manifest_naming_another_plugin(refuse):
    refuse(plugin_archive("other-plugin", "1.0.0"), "plugin_mismatch")


def test_manifest_naming_another_category_is_refused(refuse):
    """Budgets, checklists and auto-approval follow the plugin's category: the archive may not pick another."""
    refusal = refuse(plugin_archive("acme-exporter", "1.0.0", category="ui-widget"), "category_mismatch")
    assert "'ui-widget'" in refusal.detail and "'data-connector'" in refusal.detail


def test_extraction_writes_the_tree(tmp_path):
    upload = plugin_archive("acme-exporter", "1.0.0")
    extract_artifact(upload, upload.name, tmp_path, limits=ArchiveLimits.from_settings())
    assert (tmp_path / "plugin.toml").read_bytes() == GOOD_MANIFEST
    assert (tmp_path / "acme_exporter" / "plugin.py").exists()


# -- hostile tar and zip structures --------------------------------------------------------


def pax_tar(pax: dict[str, str], name: str = "x.py", data: bytes = b"x") -> SimpleUploadedFile:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.PAX_FORMAT) as archive:
        info = tarfile.TarInfo("plugin.toml")
        info.size = len(GOOD_MANIFEST)
        archive.addfile(info, io.BytesIO(GOOD_MANIFEST))
        info = tarfile.TarInfo(name)
        info.size = len(data)
        info.pax_headers = pax
        archive.addfile(info, io.BytesIO(data))
    return SimpleUploadedFile("p.tar.gz", buffer.getvalue())


def test_negative_pax_size_does_not_loop(refuse):
    """Python 3.11.7's tarfile follows a negative PAX size backwards forever (CVE-2025-8194)."""
    refuse(pax_tar({"size": "-1024"}), "corrupt_archive")


def test_long_name_bombs_are_bounded(refuse, settings):
    settings.WARDEN_ARCHIVE_LIMITS = {**settings.WARDEN_ARCHIVE_LIMITS, "max_total_bytes": 1024 * 1024}
    refuse(pax_tar({"path": "a" * 20_000_000}), "invalid_archive", "too_large_unpacked")  # over 1 MiB + headers
    refuse(pax_tar({"path": "b" * 5000}), "invalid_archive", "bad_name")


def test_directories_count_towards_the_member_limit(refuse, settings):
    settings.WARDEN_ARCHIVE_LIMITS = {**settings.WARDEN_ARCHIVE_LIMITS, "max_files": 50}
    members = [("plugin.toml", GOOD_MANIFEST)]
    for i in range(100):
        directory = tarfile.TarInfo(f"d{i}")
        directory.type = tarfile.DIRTYPE
        members.append(directory)
    refuse(tar_upload(members), "invalid_archive", "too_many_files")


def test_a_huge_central_directory_is_refused_before_it_is_read(refuse, settings):
    settings.WARDEN_ARCHIVE_LIMITS = {**settings.WARDEN_ARCHIVE_LIMITS, "max_files": 100}
    members = {"plugin.toml": GOOD_MANIFEST, **{f"f{i}": b"" for i in range(150)}}
    refusal = refuse(zip_upload(members, compression=zipfile.ZIP_STORED), "invalid_archive", "too_many_files")
    assert len(refusal.errors) == 1


def test_problems_are_capped(refuse):
    members = {"plugin.toml": GOOD_MANIFEST, **{f"../{i}": b"" for i in range(500)}}
    refusal = refuse(zip_upload(members, compression=zipfile.ZIP_STORED), "invalid_archive", "too_many_problems")
    assert len(refusal.errors) <= 101


@pytest.mark.parametrize(
    "names",
    [
        ["./plugin.toml"],
        ["a/b.py", "a//b.py"],
        ["a/b.py", "a/./b.py"],
        ["foo", "foo/bar.py"],
        ["foo/bar.py", "foo"],
        ["README.md", "readme.md"],
    ],
)
def test_names_that_alias_each_other_are_refused(refuse, names):
    refuse(
        zip_upload({"plugin.toml": GOOD_MANIFEST, **dict.fromkeys(names, b"x")}), "invalid_archive", "duplicate_name"
    )


def test_a_tar_made_with_dot_prefixes_is_accepted(plugin, author, tmp_path):
    """`tar -C plugin -czf p.tgz .` writes ./plugin.toml, ./pkg/...: the usual way to pack."""
    upload = tar_upload([("./plugin.toml", GOOD_MANIFEST), ("./acme_exporter/__init__.py", b"")])
    upload.name = "acme-exporter-1.0.0.tgz"
    version = sub.version_create(plugin=plugin, artifact=upload, actor=author)
    extract_artifact(upload, upload.name, tmp_path)
    assert (tmp_path / "plugin.toml").read_bytes() == GOOD_MANIFEST
    assert version.manifest["plugin"]["name"] == "acme-exporter"


def test_zip64_offset_overflow_is_a_corrupt_archive(refuse):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", allowZip64=True) as archive:
        archive.writestr("plugin.toml", GOOD_MANIFEST)
    data = bytearray(buffer.getvalue())
    central = data.rindex(b"PK\x01\x02")
    data[central + 42 : central + 46] = b"\xff\xff\xff\xff"  # local header offset: "see the zip64 extra field"
    extra = b"\x01\x00\x08\x00" + (2**63).to_bytes(8, "little")
    name_length = int.from_bytes(data[central + 28 : central + 30], "little")
    insert_at = central + 46 + name_length
    data[central + 30 : central + 32] = len(extra).to_bytes(2, "little")
    data[insert_at:insert_at] = extra
    end = data.rindex(b"PK\x05\x06")
    data[end + 16 : end + 20] = central.to_bytes(4, "little")
    data[end + 12 : end + 16] = (end - central).to_bytes(4, "little")
    refuse(SimpleUploadedFile("p.zip", bytes(data)), "corrupt_archive")


@pytest.mark.parametrize("entry", ["write:/tmp/../etc", "read:/tmp/../../root/.ssh", "read://etc"])
def test_a_filesystem_permission_that_resolves_elsewhere_is_refused(refuse, entry):
    manifest = GOOD_MANIFEST.replace(b'filesystem = ["write:/tmp"]', f'filesystem = ["{entry}"]'.encode())
    assert manifest != GOOD_MANIFEST
    refusal = refuse(zip_upload({"plugin.toml": manifest, "acme_exporter/__init__.py": b""}), "invalid_manifest")
    assert [e["field"] for e in refusal.errors] == ["permissions.filesystem[0]"]
