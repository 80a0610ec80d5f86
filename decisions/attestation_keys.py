"""Warden's attestation key: one Ed25519 private key in a PEM (PKCS#8) file, named by the
``WARDEN_ATTESTATION_KEY`` setting; ``manage.py attestation_key`` generates it.

This module imports no models: the production settings call ``attestation_key_required`` while
they load, so a process without a usable key refuses to start.
"""

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_private_key,
    load_pem_public_key,
)
from django.core.exceptions import ImproperlyConfigured
from securesystemslib.signer import CryptoSigner, SSlibKey

GENERATE_HINT = "generate one with `manage.py attestation_key` (docs/hosts.md, 'Verifying an attestation')"


@dataclass(frozen=True)
class AttestationKey:
    """The signer and the public forms Warden publishes (docs/hosts.md)."""

    signer: CryptoSigner
    public_pem: str

    @property
    def public_key(self) -> SSlibKey:
        return self.signer.public_key

    @property
    def keyid(self) -> str:
        return self.signer.public_key.keyid

    def public_document(self) -> dict[str, Any]:
        """The JSON form: securesystemslib's key dictionary with its keyid, so that a host reads
        it back with ``SSlibKey.from_dict(key.pop("keyid"), key)``."""
        return {"keyid": self.keyid, **self.public_key.to_dict()}


def attestation_key_load(*, path: Path) -> AttestationKey:
    """The key at ``path``, or ImproperlyConfigured saying what is wrong with it and what to do."""
    try:
        pem = Path(path).read_bytes()
    except FileNotFoundError:
        message = f"There is no attestation key at {path} (WARDEN_ATTESTATION_KEY): {GENERATE_HINT}."
        raise ImproperlyConfigured(message) from None
    except OSError as exc:
        message = f"The attestation key {path} (WARDEN_ATTESTATION_KEY) cannot be read: {exc}."
        raise ImproperlyConfigured(message) from None
    try:
        private_key = load_pem_private_key(pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise ImproperlyConfigured(
            f"{path} (WARDEN_ATTESTATION_KEY) is not an unencrypted PEM private key: {GENERATE_HINT}."
        ) from None
    if not isinstance(private_key, Ed25519PrivateKey):
        raise ImproperlyConfigured(
            f"{path} (WARDEN_ATTESTATION_KEY) is not an Ed25519 key; attestations are signed with Ed25519: "
            f"{GENERATE_HINT}."
        )
    public_pem = private_key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()
    return AttestationKey(signer=CryptoSigner(private_key), public_pem=public_pem)


def attestation_key_generate(*, path: Path) -> AttestationKey:
    """Write a new Ed25519 private key to ``path``, readable by its owner only (0600). Never
    overwrites a key: FileExistsError when ``path`` exists."""
    signer = CryptoSigner.generate_ed25519()
    private_key_write(path=Path(path), data=signer.private_bytes)
    return attestation_key_load(path=path)


def private_key_write(*, path: Path, data: bytes) -> None:
    """Create ``path`` with ``data``, readable by its owner only from its first byte (no window
    under the umask); FileExistsError rather than replacing a key. The TUF role keys use it too."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)


def attestation_key_required(value: str | Path | None) -> Path:
    """For the production settings: the path of a usable key, or ImproperlyConfigured. Approvals
    are signed, so Warden does not start without the key it signs them with."""
    if not value:
        raise ImproperlyConfigured(
            "WARDEN_ATTESTATION_KEY is required in production: the path of the Ed25519 key approvals are signed "
            f"with; {GENERATE_HINT}, run with the default (development) settings, e.g. "
            "`WARDEN_ATTESTATION_KEY=/etc/warden/attestation.pem python manage.py attestation_key`."
        )
    path = Path(value)
    attestation_key_load(path=path)
    return path


def public_key_read(*, path: Path) -> SSlibKey:
    """A host's copy of Warden's public key: the PEM (``/.well-known/warden-attestation-key.pem``)
    or the JSON form (``…/warden-attestation-key.json``). ValueError when it is neither."""
    data = Path(path).read_bytes()
    try:
        if data.lstrip().startswith(b"{"):
            document = json.loads(data)
            return SSlibKey.from_dict(document.pop("keyid"), document)
        return SSlibKey.from_crypto(load_pem_public_key(data))
    except (KeyError, AttributeError, ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise ValueError(f"{path} is neither a PEM public key nor Warden's JSON key ({exc!r}).") from None
