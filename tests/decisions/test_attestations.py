"""Every approval is attested: an in-toto statement (SLSA Verification Summary) in a DSSE
envelope signed with Warden's Ed25519 key, which a host verifies offline with the published key
and securesystemslib alone (docs/hosts.md, "Verifying an attestation")."""

import base64
import hashlib
import importlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from decisions import approval
from decisions.attestation_keys import attestation_key_load, attestation_key_required
from decisions.attestations import (
    DECISION_FIELD,
    AttestationRejected,
    attestation_of,
    attestation_verify,
    policy_bundle,
)
from decisions.deployment import version_revoke
from decisions.exemptions import exemption_approve
from decisions.models import Attestation, Decision
from decisions.rubric import digest_of
from governance.models import AuditEvent
from reviews.models import CheckRun
from reviews.reports import report_attach
from tests.conftest import approve
from tests.decisions.test_exemptions import ask
from tests.decisions.test_policies import load, policy_yaml

pytestmark = pytest.mark.django_db

HOSTS_MD = Path(__file__).resolve().parents[2] / "docs" / "hosts.md"
EMPTY_SARIF = json.dumps(
    {"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "Semgrep", "version": "1.70.0"}}, "results": []}]}
).encode()


def enforce(directory: Path, expression: str = "findings.open.critical == 0") -> None:
    load(
        directory,
        critical=policy_yaml("no-critical", expression),
        pii=policy_yaml("no-pii", '!("pii" in manifest.data.categories)', mode="log", severity="low"),
    )


@pytest.fixture
def approved(tmp_path, make_awaiting, author, board):
    """Approved by the board on an enforced and a log-only policy, with a SARIF report CI posted."""
    enforce(tmp_path / "policies")
    version = make_awaiting("1.0.0")
    report_attach(version=version, format="sarif", content=EMPTY_SARIF, actor=author, filename="semgrep.sarif")
    approve(version=version, actor=board)
    version.refresh_from_db()
    assert version.status == "approved"
    return version


def api(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def doc_snippet() -> str:
    """The verification snippet of docs/hosts.md, exactly as it stands there."""
    text = HOSTS_MD.read_text()
    match = re.search(r"<!-- attestation-snippet[^>]*-->\n```python\n(.*?)```", text, re.S)
    assert match, "docs/hosts.md has no attestation snippet"
    return match.group(1)


def run_snippet(tmp_path: Path, key: bytes, envelope: bytes, artifact: bytes) -> subprocess.CompletedProcess:
    """Run the snippet as a host would: its own interpreter in isolated mode (no Warden on the
    path, no Django), the three files it is given, nothing else."""
    script, files = tmp_path / "verify.py", [tmp_path / n for n in ("key.json", "attestation.json", "plugin.zip")]
    script.write_text(doc_snippet())
    for path, content in zip(files, (key, envelope, artifact), strict=True):
        path.write_bytes(content)
    return subprocess.run(  # noqa: S603 - the documented snippet, our own file
        [sys.executable, "-I", str(script), *map(str, files)], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )


def flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]


def with_envelope_field(envelope: dict, field: str, change) -> bytes:
    """The envelope with one byte changed in its decoded payload or signature."""
    copy = json.loads(json.dumps(envelope))
    if field == "payload":
        copy["payload"] = base64.b64encode(change(base64.b64decode(copy["payload"]))).decode()
    else:
        signature = copy["signatures"][0]
        signature["sig"] = base64.b64encode(change(base64.b64decode(signature["sig"]))).decode()
    return json.dumps(copy).encode()


def test_an_approved_versions_attestation_verifies_offline_with_the_published_key_and_nothing_else(
    approved, author, tmp_path
):
    key_json = api().get("/.well-known/warden-attestation-key.json")
    key_pem = api().get("/.well-known/warden-attestation-key.pem")
    response = api(author).get(f"/api/v1/versions/{approved.pk}/attestation/")

    assert (key_json.status_code, key_pem.status_code, response.status_code) == (200, 200, 200)
    attestation = Attestation.objects.get(version=approved)
    assert hashlib.sha256(response.content).hexdigest() == attestation.sha256
    assert response["ETag"] == f'"{attestation.sha256}"'
    assert json.loads(key_json.content)["keyid"] == attestation.key_id == key_pem["X-Key-Id"]
    assert key_pem.content.startswith(b"-----BEGIN PUBLIC KEY-----")
    artifact = approved.artifact.open("rb").read()

    verified = run_snippet(tmp_path, key_json.content, response.content, artifact)
    assert verified.returncode == 0, verified.stderr

    other_artifact = run_snippet(tmp_path, key_json.content, response.content, flip(artifact, len(artifact) // 2))
    assert other_artifact.returncode != 0 and "Not verified" in other_artifact.stderr
    envelope = json.loads(response.content)
    for field in ("payload", "signature"):
        tampered = with_envelope_field(envelope, field, lambda data: flip(data, 10))
        refused = run_snippet(tmp_path, key_json.content, tampered, artifact)
        assert refused.returncode != 0 and "VerificationError" in refused.stderr, field


def test_the_statement_names_the_artifact_the_policy_bundle_the_reports_and_the_decision(approved, board, settings):
    attestation = attestation_of(version=approved)
    decision = Decision.objects.get(version=approved, action="approve")
    payload = json.loads(base64.b64decode(attestation.envelope["payload"]))
    statement = attestation.statement
    predicate = statement["predicate"]

    assert payload == statement and attestation.decision == decision
    assert attestation.envelope["payloadType"] == "application/vnd.in-toto+json"
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["subject"] == [{"name": approved.artifact_name, "digest": {"sha256": approved.sha256}}]
    assert statement["predicateType"] == "https://slsa.dev/verification_summary/v1"
    assert predicate["verificationResult"] == "PASSED"
    assert predicate["verifiedLevels"] == ["SLSA_BUILD_LEVEL_UNEVALUATED", "WARDEN_APPROVED"]
    assert predicate["verifier"]["id"] == settings.WARDEN_BASE_URL
    assert predicate["resourceUri"] == f"{settings.WARDEN_BASE_URL}/api/v1/versions/{approved.pk}/"

    details = predicate[DECISION_FIELD]
    bundle = details["policyBundle"]
    assert predicate["policy"]["digest"] == {"sha256": digest_of(bundle)}
    assert bundle["policies"] == [{"key": "no-critical", "version": 1, "expression": "findings.open.critical == 0"}]
    assert (bundle["rubric"]["key"], bundle["rubric"]["version"]) == (decision.rating.rubric.key, 1)

    sarif = CheckRun.objects.get(version=approved, tool="Semgrep")
    inputs = {item["uri"].rsplit("/checkrun/", 1)[1]: item for item in predicate["inputAttestations"]}
    assert inputs[f"{sarif.pk}/report/"]["digest"] == {"sha256": hashlib.sha256(EMPTY_SARIF).hexdigest()}
    assert inputs[f"{sarif.pk}/report/"]["annotations"] == {
        "tool": "Semgrep",
        "toolVersion": "1.70.0",
        "status": "succeeded",
    }
    with_reports = CheckRun.objects.filter(version=approved).exclude(report="")
    assert len(inputs) == with_reports.count()

    assert details["approvedBy"] == board.username and details["action"] == "approve"
    assert details["rating"] == {
        "id": decision.rating_id,
        "total": str(decision.rating.total),
        "band": decision.rating.band,
        "digest": decision.rating_digest,
    }
    assert details["evaluation"] == {"id": decision.evaluation_id, "digest": decision.evaluation_digest}
    assert details["exemptions"] == []
    event = AuditEvent.objects.get(action="attestation.issue", object_id=str(attestation.pk))
    assert event.actor == board and event.data["sha256"] == attestation.sha256


def test_the_policy_digest_changes_with_an_enforced_policy_and_exemptions_are_named_with_their_expiry(
    approved, tmp_path, make_awaiting, board, board2
):
    first = attestation_of(version=approved).statement["predicate"]
    enforce(tmp_path / "policies", expression="findings.open.critical == 0 && findings.open.high == 0")
    version = make_awaiting("1.1.0")
    exemption = exemption_approve(exemption=ask(board2, version, policy_key="no-pii"), actor=board)
    approve(version=version, actor=board)

    second = attestation_of(version=version).statement["predicate"]
    assert second["policy"]["digest"] != first["policy"]["digest"]
    assert second[DECISION_FIELD]["policyBundle"]["policies"][0]["version"] == 2
    assert policy_bundle(decision=Decision.objects.get(version=approved))["policies"][0]["version"] == 1
    assert second[DECISION_FIELD]["exemptions"] == [
        {
            "id": exemption.pk,
            "scope": "version",
            "policy": "no-pii",
            "finding": None,
            "approvedBy": board.username,
            "expiresAt": exemption.expires_at.isoformat().replace("+00:00", "Z"),
        }
    ]


def test_auto_approval_is_attested_too(settings, tmp_path, make_awaiting):
    settings.WARDEN_AUTO_APPROVE_CATEGORIES = ["data-connector"]
    enforce(tmp_path / "policies")
    version = make_awaiting("1.0.0")
    version.refresh_from_db()

    assert version.status == "approved"
    attestation = attestation_of(version=version)
    details = attestation.statement["predicate"][DECISION_FIELD]
    assert (details["action"], details["approvedBy"]) == ("auto_approve", None)
    assert attestation.decision == Decision.objects.get(version=version, action="auto_approve")
    key = attestation_key_load(path=settings.WARDEN_ATTESTATION_KEY).public_key
    assert attestation_verify(envelope=attestation.envelope, artifact_sha256=version.sha256, key=key)


def test_the_endpoint_shows_an_attestation_to_those_who_see_the_version_and_a_rejected_one_has_none(
    approved, make_awaiting, author, other_author, outsider, board
):
    url = f"/api/v1/versions/{approved.pk}/attestation/"
    assert api(author).get(url).status_code == 200
    assert api(board).get(url).status_code == 200
    assert api(other_author).get(url).status_code == 404
    assert api(outsider).get(url).status_code == 404
    assert api().get(url).status_code in (401, 403)

    rejected = make_awaiting("2.0.0")
    approval.version_reject(version=rejected, actor=board, reason="Not this one.")
    response = api(author).get(f"/api/v1/versions/{rejected.pk}/attestation/")
    assert response.status_code == 404 and response.json()["code"] == "no_attestation"
    assert attestation_of(version=rejected) is None
    assert not Attestation.objects.filter(version=rejected).exists()


def test_verify_attestation_exits_zero_only_for_the_attested_artifact(approved, author, tmp_path):
    envelope, artifact, key = tmp_path / "attestation.json", tmp_path / "plugin.zip", tmp_path / "warden.pem"
    envelope.write_bytes(api(author).get(f"/api/v1/versions/{approved.pk}/attestation/").content)
    artifact.write_bytes(approved.artifact.open("rb").read())
    key.write_bytes(api().get("/.well-known/warden-attestation-key.pem").content)

    call_command("verify_attestation", str(envelope), str(artifact), "--key", str(key), verbosity=0)
    call_command("verify_attestation", str(envelope), str(artifact), verbosity=0)  # this Warden's own key

    def refused(*args: str) -> CommandError:
        with pytest.raises(CommandError) as raised:
            call_command("verify_attestation", *args, verbosity=0)
        return raised.value

    other = tmp_path / "other.zip"
    other.write_bytes(flip(artifact.read_bytes(), 100))
    assert refused(str(envelope), str(other), "--key", str(key)).returncode == 1
    tampered = tmp_path / "tampered.json"
    tampered.write_bytes(with_envelope_field(json.loads(envelope.read_bytes()), "payload", lambda d: flip(d, 3)))
    error = refused(str(tampered), str(artifact), "--key", str(key))
    assert error.returncode == 1 and "signature does not verify" in str(error)
    assert refused(str(tmp_path / "missing.json"), str(artifact)).returncode == 2
    assert refused(str(envelope), str(artifact), "--key", str(artifact)).returncode == 2


def test_a_revoked_approvals_attestation_still_verifies_as_a_signature(approved, board, settings):
    version_revoke(version=approved, actor=board, reason="A backdoor was found.")
    approved.refresh_from_db()

    assert approved.status == "revoked"
    attestation = attestation_of(version=approved)
    key = attestation_key_load(path=settings.WARDEN_ATTESTATION_KEY).public_key
    assert attestation_verify(envelope=attestation.envelope, artifact_sha256=approved.sha256, key=key)
    with pytest.raises(AttestationRejected, match="not the attested subject"):
        attestation_verify(envelope=attestation.envelope, artifact_sha256="0" * 64, key=key)


def test_production_refuses_to_start_without_a_usable_attestation_key(monkeypatch, tmp_path, settings):
    with pytest.raises(ImproperlyConfigured, match="WARDEN_ATTESTATION_KEY is required in production"):
        attestation_key_required("")
    with pytest.raises(ImproperlyConfigured, match="There is no attestation key at"):
        attestation_key_required(tmp_path / "missing.pem")
    (tmp_path / "rsa.pem").write_bytes(
        rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
            Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
        )
    )
    with pytest.raises(ImproperlyConfigured, match="is not an Ed25519 key"):
        attestation_key_required(tmp_path / "rsa.pem")
    (tmp_path / "garbage.pem").write_text("not a key")
    with pytest.raises(ImproperlyConfigured, match="is not an unencrypted PEM private key"):
        attestation_key_required(tmp_path / "garbage.pem")
    assert attestation_key_required(str(settings.WARDEN_ATTESTATION_KEY)) == settings.WARDEN_ATTESTATION_KEY

    monkeypatch.setenv("DJANGO_SECRET_KEY", "x" * 50)
    monkeypatch.delenv("WARDEN_ATTESTATION_KEY")
    with pytest.raises(ImproperlyConfigured, match="WARDEN_ATTESTATION_KEY is required in production"):
        importlib.reload(importlib.import_module("config.settings.production"))
    monkeypatch.setenv("WARDEN_ATTESTATION_KEY", str(settings.WARDEN_ATTESTATION_KEY))
    production = importlib.reload(importlib.import_module("config.settings.production"))
    assert production.WARDEN_ATTESTATION_KEY == settings.WARDEN_ATTESTATION_KEY


def test_attestation_key_generates_an_owner_only_key_once_and_never_replaces_it(settings, tmp_path, capsys):
    settings.WARDEN_ATTESTATION_KEY = tmp_path / "keys" / "attestation.pem"

    call_command("attestation_key")
    made = capsys.readouterr().out
    key = attestation_key_load(path=settings.WARDEN_ATTESTATION_KEY)
    pem = settings.WARDEN_ATTESTATION_KEY.read_bytes()
    assert settings.WARDEN_ATTESTATION_KEY.stat().st_mode & 0o777 == 0o600
    assert f"Key id: {key.keyid}" in made and key.public_pem in made

    with pytest.raises(CommandError, match="a key is never replaced"):
        call_command("attestation_key")
    call_command("attestation_key", "--if-missing")
    assert f"Kept the attestation key {settings.WARDEN_ATTESTATION_KEY}" in capsys.readouterr().out
    assert settings.WARDEN_ATTESTATION_KEY.read_bytes() == pem
    assert api().get("/.well-known/warden-attestation-key.json").json()["keyid"] == key.keyid
