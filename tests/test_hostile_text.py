"""Text that is not text: lone UTF-16 surrogates from undecodable archive names or from
``"\\udc80"`` escapes in JSON. Each is refused with a clear error and changes nothing; naming
it in the refusal is never a 500 (governance/text.py)."""

import io
import json
import tarfile
import tempfile
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from rest_framework.test import APIClient

from governance.errors import ValidationFailed
from reviews.models import Advisory, CheckRun
from submissions.models import PluginVersion
from submissions.samples import MANIFEST_TEMPLATE

pytestmark = pytest.mark.django_db


def tar_with_undecodable_name() -> SimpleUploadedFile:
    buffer = io.BytesIO()
    manifest = MANIFEST_TEMPLATE.format(name="acme-exporter", version="9.0.0", module="m", category="data-connector")
    with tarfile.open(fileobj=buffer, mode="w:gz", encoding="utf-8", errors="surrogateescape") as archive:
        for name, data in [("plugin.toml", manifest.encode()), ("caf\udce9.py", b"x = 1\n")]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return SimpleUploadedFile("acme-exporter-9.0.0.tar.gz", buffer.getvalue())


def api_as(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_a_refusal_naming_a_lone_surrogate_is_still_text():
    refusal = ValidationFailed("Bad name caf\udce9.py", errors=[{"field": "caf\udce9.py", "message": "x"}])
    encoded = json.dumps(refusal.as_dict(), ensure_ascii=False).encode("utf-8")  # raised before
    assert json.loads(encoded)["errors"][0]["field"] == "caf\\udce9.py"


def test_an_archive_member_with_an_undecodable_name_is_refused_in_the_api(plugin, author):
    response = api_as(author).post(
        f"/api/v1/plugins/{plugin.pk}/versions/", {"artifact": tar_with_undecodable_name()}, format="multipart"
    )
    assert response.status_code == 400, response.content[:300]
    body = response.json()
    assert body["code"] == "invalid_archive"
    assert {"field": "caf\\udce9.py", "code": "non_utf8_name"}.items() <= body["errors"][0].items()
    assert not PluginVersion.objects.exists()


def test_an_archive_member_with_an_undecodable_name_is_refused_in_the_admin(client, plugin, author):
    client.force_login(author)
    response = client.post(
        reverse("admin:submissions_pluginversion_add"), {"plugin": plugin.pk, "artifact": tar_with_undecodable_name()}
    )
    assert response.status_code == 200
    assert "caf\\udce9.py" in response.content.decode() and "not UTF-8" in response.content.decode()
    assert not PluginVersion.objects.exists()


def test_a_report_with_a_lone_surrogate_escape_is_refused(in_review, author):
    sarif = b'{"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "bandit\\udc80"}}, "results": []}]}'
    response = api_as(author).post(
        f"/api/v1/versions/{in_review.pk}/reports/",
        {"format": "sarif", "report": SimpleUploadedFile("r.sarif", sarif)},
        format="multipart",
    )
    assert response.status_code == 400, response.content[:300]
    assert "lone UTF-16 surrogate" in response.json()["detail"]
    assert not CheckRun.objects.filter(version=in_review, origin="external").exists()


@pytest.mark.parametrize("how", ["body", "file"])
def test_an_advisory_with_a_lone_surrogate_escape_is_refused(platform_admin, how):
    document = '{"id": "X-\\udc80", "modified": "2024-01-01T00:00:00Z", "affected": []}'
    client = api_as(platform_admin)
    if how == "body":
        response = client.post("/api/v1/advisories/", document, content_type="application/json")
    else:
        upload = SimpleUploadedFile("a.json", document.encode())
        response = client.post("/api/v1/advisories/", {"file": upload}, format="multipart")
    assert response.status_code == 400, response.content[:300]
    assert "lone UTF-16 surrogate" in json.dumps(response.json())
    assert not Advisory.objects.exists()


def test_a_body_over_the_upload_limits_is_refused_by_its_length_before_it_is_read(client, author, plugin, settings):
    """The declared length alone decides: the test sends a short body that claims 400 MB, which
    Django would otherwise read, parse and spool."""
    client.force_login(author)
    claimed = 400 * 1024 * 1024
    response = client.post(
        f"/api/v1/plugins/{plugin.pk}/versions/",
        data=b"x" * 100,
        content_type="multipart/form-data; boundary=x",
        CONTENT_LENGTH=str(claimed),
    )
    assert response.status_code == 413 and response.json()["code"] == "request_too_large"
    assert str(settings.WARDEN_MAX_REQUEST_BYTES) in response.json()["detail"]
    admin = client.post(
        reverse("admin:submissions_pluginversion_add"),
        data=b"x",
        content_type="text/plain",
        CONTENT_LENGTH=str(claimed),
    )
    assert admin.status_code == 413
    assert not PluginVersion.objects.exists()


BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
    f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
    for i in range(8)
)


def test_a_yaml_alias_bomb_is_refused_at_once(platform_admin):
    import time

    assert len(BOMB) < 600  # expands to 9**9 strings
    started = time.monotonic()
    upload = SimpleUploadedFile("bomb.yaml", BOMB.encode())
    response = api_as(platform_admin).post("/api/v1/advisories/", {"file": upload}, format="multipart")
    assert response.status_code == 400, response.content[:300]
    assert "aliases (*name) are not accepted" in json.dumps(response.json())
    assert time.monotonic() - started < 2  # it took 4 s before, and more memory than the document
    from decisions.policies import policy_document

    with pytest.raises(ValidationFailed, match="aliases"):
        policy_document(BOMB, source="bomb.yaml")


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("osv.zip", b"PK\x03\x04 not really a zip"),
        ("all.zip", None),  # a zip whose member is not JSON
        ("advisory.json", b"{not json"),
        ("advisory.yaml", b"key: [unclosed"),
    ],
)
def test_advisory_errors_name_the_upload_never_the_servers_scratch_path(platform_admin, name, content):
    if content is None:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("PYSEC-1.json", "{broken")
        content = buffer.getvalue()
    upload = SimpleUploadedFile(name, content)
    response = api_as(platform_admin).post("/api/v1/advisories/", {"file": upload}, format="multipart")
    assert response.status_code == 400
    text = response.content.decode()
    assert name in text
    assert "warden-osv" not in text and "/tmp" not in text and tempfile.gettempdir() not in text
