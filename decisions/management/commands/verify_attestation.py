"""Verify an attestation offline, as a host does: ``verify_attestation ENVELOPE ARTIFACT``.

Checks the DSSE envelope's signature with Warden's public key (``--key``: the PEM or JSON form
published at /.well-known/warden-attestation-key.*; by default the public half of this Warden's
WARDEN_ATTESTATION_KEY), that the statement is an in-toto Statement v1 with the SLSA Verification
Summary predicate, that its subject's SHA-256 is the artifact's, and that the result is PASSED.

Exit status: 0 verified; 1 the attestation does not verify for this artifact; 2 an input cannot be
read. A revoked approval's attestation still verifies: ask the feed whether it is revoked.
"""

import hashlib
import json
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser
from securesystemslib.signer import Key

from decisions.attestation_keys import attestation_key_load, public_key_read
from decisions.attestations import DECISION_FIELD, AttestationRejected, attestation_verify

UNREADABLE = 2


class Command(BaseCommand):
    help = __doc__
    requires_system_checks: list[str] = []  # offline: nothing but the files named

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("envelope", help="The attestation (GET /api/v1/versions/{id}/attestation/), a JSON file.")
        parser.add_argument("artifact", help="The plugin archive it should attest.")
        parser.add_argument("--key", default=None, help="Warden's public key, PEM or JSON (default: this Warden's).")

    def handle(self, *args: Any, envelope: str, artifact: str, key: str | None, verbosity: int = 1, **_: Any) -> None:
        public_key = self._key(key)
        document = self._read(envelope, json.loads)
        digest = self._read(artifact, lambda data: hashlib.sha256(data).hexdigest())
        try:
            statement = attestation_verify(envelope=document, artifact_sha256=digest, key=public_key)
        except AttestationRejected as exc:
            raise CommandError(f"Not verified: {exc}", returncode=1) from None
        if verbosity:
            predicate = statement["predicate"]
            approver = predicate.get(DECISION_FIELD, {}).get("approvedBy")
            self.stdout.write(
                f"Verified: {artifact} (sha256 {digest}) is {statement['subject'][0]['name']}, "
                f"{f'approved by {approver}' if approver else 'auto-approved by Warden'} "
                f"at {predicate.get('timeVerified')}; verifier {predicate['verifier']['id']}, key {public_key.keyid}."
            )

    def _key(self, path: str | None) -> Key:
        if path is None:
            try:
                return attestation_key_load(path=Path(settings.WARDEN_ATTESTATION_KEY)).public_key
            except ImproperlyConfigured as exc:
                raise CommandError(f"{exc} Or name Warden's public key with --key.", returncode=UNREADABLE) from None
        return self._read(path, lambda _data: public_key_read(path=Path(path)))

    def _read(self, path: str, parse: Any) -> Any:
        try:
            return parse(Path(path).read_bytes())
        except (OSError, ValueError) as exc:
            raise CommandError(f"Cannot read {path}: {exc}", returncode=UNREADABLE) from None
