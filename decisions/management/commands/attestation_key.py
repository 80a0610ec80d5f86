"""Generate Warden's attestation key and print its public key.

Every approval is signed with an Ed25519 key (WARDEN_ATTESTATION_KEY, a PEM private key file);
production refuses to start without it. This writes a new key there, readable by its owner only
(0600), and prints the public key hosts verify attestations with (docs/hosts.md). An existing key
is never replaced: attestations already issued name it. With ``--if-missing`` an existing key is
kept and its public key printed (``make run`` does this before loading the demo).
"""

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser

from decisions.attestation_keys import attestation_key_generate, attestation_key_load


class Command(BaseCommand):
    help = __doc__
    requires_system_checks: list[str] = []  # it makes what the rest needs; nothing else is required

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--if-missing", action="store_true", help="Keep an existing key instead of refusing.")

    def handle(self, *args: Any, if_missing: bool = False, verbosity: int = 1, **options: Any) -> None:
        path = Path(settings.WARDEN_ATTESTATION_KEY)
        try:
            key = attestation_key_generate(path=path)
            made = f"Generated the attestation key {path} (0600)."
        except FileExistsError:
            if not if_missing:
                raise CommandError(
                    f"{path} exists: a key is never replaced (attestations already issued name it). "
                    "Use --if-missing to keep it."
                ) from None
            try:
                key = attestation_key_load(path=path)
            except ImproperlyConfigured as exc:
                raise CommandError(str(exc)) from None
            made = f"Kept the attestation key {path}."
        if verbosity:
            self.stdout.write(f"{made}\nKey id: {key.keyid}\n{key.public_pem}", ending="")
