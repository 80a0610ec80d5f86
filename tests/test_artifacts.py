"""Uploads the manifest reader must refuse cleanly, or accept, without a 500 anywhere."""

import io
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from governance.errors import ValidationFailed
from submissions import services as sub
from submissions.models import PluginVersion
from submissions.samples import MANIFEST_TEMPLATE, plugin_archive

pytestmark = pytest.mark.django_db


def manifest(**plugin) -> str:
    text = MANIFEST_TEMPLATE.format(
        name="acme-exporter", version="1.0.0", module="acme_exporter", category="data-connector"
    )
    for key, value in plugin.items():
        text = text.replace(f'{key} = "', f'{key} = {value}\n_old_{key} = "', 1)
    return text


def refused_with(plugin, author, upload, code: str) -> ValidationFailed:
    with pytest.raises(ValidationFailed) as refusal:
        sub.version_create(plugin=plugin, artifact=upload, actor=author)
    assert refusal.value.code == code
    assert not PluginVersion.objects.exists()
    return refusal.value


def test_corrupt_deflate_data_is_a_corrupt_archive(plugin, author):
    data = bytearray(plugin_archive(plugin.name, "1.0.0").read())
    start = data.index(b"plugin.toml") + len(b"plugin.toml")
    data[start : start + 40] = b"\xff" * 40  # inside the compressed manifest
    refused_with(plugin, author, SimpleUploadedFile("p.zip", bytes(data)), "corrupt_archive")


def test_encrypted_member_is_a_corrupt_archive(plugin, author):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("plugin.toml", manifest())
    data = bytearray(buffer.getvalue())
    # set the "encrypted" flag bit in the local header and the central directory entry
    for offset in (6, data.rindex(b"PK\x01\x02") + 8):
        data[offset] |= 0x01
    refused_with(plugin, author, SimpleUploadedFile("p.zip", bytes(data)), "corrupt_archive")


def test_toml_dates_are_kept_as_text(plugin, author):
    text = manifest() + "\n[release]\ndate = 2026-11-29\n"
    version = sub.version_create(
        plugin=plugin, artifact=plugin_archive(plugin.name, "1.0.0", manifest=text), actor=author
    )
    assert version.manifest["release"]["date"] == "2026-11-29"


@pytest.mark.parametrize(
    ("text", "field"),
    [
        (manifest(version='"1.0.0' + ".0" * 40 + '"'), "plugin.version"),
        (manifest(entrypoint='"a\\u0000b"'), "plugin.toml"),
        ("[plugin]\nname = 3\n", "plugin.name"),
        ("not toml at all [", "plugin.toml"),
    ],
)
def test_malformed_manifests_name_the_field(plugin, author, text, field):
    refusal = refused_with(plugin, author, plugin_archive(plugin.name, "1.0.0", manifest=text), "invalid_manifest")
    assert field in [error["field"] for error in refusal.errors]


def test_manifest_naming_another_plugin_is_refused(plugin, author):
    refused_with(plugin, author, plugin_archive("other-plugin", "1.0.0"), "plugin_mismatch")


def test_missing_manifest(plugin, author):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("README.md", "no manifest here")
    refused_with(plugin, author, SimpleUploadedFile("p.zip", buffer.getvalue()), "manifest_missing")
