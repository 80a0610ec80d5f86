"""The TUF repository's keys: one Ed25519 private key file per role (docs/runbook.md "TUF keys").

The root key signs the root only and may be kept offline once the root is made; the online
roles (targets, snapshot, timestamp) sign at every publication, so production does not start
without them.
"""

from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from securesystemslib.signer import CryptoSigner

from .attestation_keys import private_key_write

ROLES = ("root", "targets", "snapshot", "timestamp")
ONLINE_ROLES = ("targets", "snapshot", "timestamp")


def key_generate(*, path: Path) -> CryptoSigner:
    """Write a new Ed25519 private key (PEM, PKCS#8) readable by its owner only; never overwrite."""
    private = Ed25519PrivateKey.generate()
    private_key_write(path=path, data=private.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    return CryptoSigner(private)


def key_load(*, path: Path) -> CryptoSigner:
    try:
        pem = path.read_bytes()
    except FileNotFoundError:
        raise ImproperlyConfigured(f"TUF key {path} is missing: run `manage.py tuf_keys`.") from None
    return CryptoSigner(load_pem_private_key(pem, None))


def signer_of(role: str) -> CryptoSigner:
    """The signer of ``role`` from the key file settings name."""
    path = settings.WARDEN_TUF_KEYS.get(role)
    if path is None:  # production without the root key: it is offline
        raise ImproperlyConfigured(f"No {role} key is configured: set WARDEN_TUF_{role.upper()}_KEY for this command.")
    return key_load(path=Path(path))


def keys_generate(*, dry_run: bool = False) -> list[Path]:
    """Generate the key file of every role settings name that does not exist yet."""
    configured = [Path(settings.WARDEN_TUF_KEYS[role]) for role in ROLES if role in settings.WARDEN_TUF_KEYS]
    missing = [path for path in configured if not path.exists()]
    if not dry_run:
        for path in missing:
            key_generate(path=path)
    return missing


def tuf_keys_required(paths: dict[str, str]) -> dict[str, Path]:
    """For the production settings: ``{role: path}`` from the environment, where every online
    role's key is a usable Ed25519 key, or ImproperlyConfigured naming what is wrong. The root's
    may be absent (kept offline); a path given for it is taken as it is."""
    problems = []
    for role in ONLINE_ROLES:
        variable = f"WARDEN_TUF_{role.upper()}_KEY"
        if not paths.get(role):
            problems.append(f"{variable} is not set")
            continue
        try:
            signer = key_load(path=Path(paths[role]))
        except (ImproperlyConfigured, ValueError, TypeError, OSError) as exc:
            problems.append(f"{variable}: {exc}")
            continue
        if signer.public_key.keytype != "ed25519":
            problems.append(f"{variable}: {paths[role]} is not an Ed25519 key")
    if problems:
        raise ImproperlyConfigured(
            'The TUF repository\'s online keys are required in production (docs/runbook.md, "TUF keys"): '
            + "; ".join(problems)
            + ". Generate them once with `manage.py tuf_keys` under the default settings."
        )
    return {role: Path(path) for role, path in paths.items() if path}
