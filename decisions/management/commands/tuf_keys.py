"""Generate the TUF repository's keys, rotate one, or renew the root.

Hosts verify every update against the root they trust, and the root names one key per role
(docs/runbook.md "TUF keys: roles and rotation"). Without options: generate the key file of
each role that has none yet (never overwriting one). ``--rotate ROLE``: sign the next root with
a new key for ROLE, keep the old file as ``<file>.retired-<root version>`` and re-sign. The root
key is read only by this command and by the very first publication.
"""

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from decisions import tuf_keys, tuf_repo


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--rotate", choices=tuf_keys.ROLES, help="Replace this role's key.")
        parser.add_argument("--renew-root", action="store_true", help="Sign the next root with the same keys.")
        parser.add_argument("--dry-run", action="store_true", help="Say what would be done; do nothing.")

    def handle(
        self,
        *args: Any,
        rotate: str | None = None,
        renew_root: bool = False,
        dry_run: bool = False,
        verbosity: int = 1,
        **options: Any,
    ) -> None:
        if rotate and renew_root:
            raise CommandError("Either --rotate or --renew-root.")
        if rotate or renew_root:
            if dry_run:
                self.stdout.write(f"Would sign the next root {'naming a new ' + rotate + ' key' if rotate else ''}.")
                return
            version = tuf_repo.key_rotate(role=rotate) if rotate else tuf_repo.root_renew()
            if verbosity:
                self.stdout.write(f"Root version {version} signed{' with a new ' + rotate + ' key' if rotate else ''}.")
            return
        created = tuf_keys.keys_generate(dry_run=dry_run)
        if verbosity:
            verb = "Would generate" if dry_run else "Generated"
            self.stdout.write(f"{verb} {len(created)} key(s); {len(tuf_keys.ROLES) - len(created)} existed.")
        if verbosity >= 2 and not dry_run:
            for role in tuf_keys.ROLES:  # the key ids hosts and operators compare out of band
                path = settings.WARDEN_TUF_KEYS[role]
                self.stdout.write(f"  {role}: {path} keyid {tuf_keys.signer_of(role).public_key.keyid}")
