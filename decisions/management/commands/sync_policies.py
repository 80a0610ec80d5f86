"""Make the policies in the database match the YAML files of the policy directory.

Policies are code: they are reviewed and versioned in the repository (``policies/``) and this
command is how a deployment picks them up. A changed file becomes the policy's next version,
a removed file retires its policy, an unchanged file changes nothing. One file that does not
load (YAML, a missing field, a CEL expression that does not compile) refuses the whole sync.
"""

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from decisions.policies import policies_sync, policy_files_load
from governance.errors import ValidationFailed


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dir", default=None, help="The policy directory (default: WARDEN_POLICY_DIR).")
        parser.add_argument("--dry-run", action="store_true", help="Say what would change; change nothing.")

    def handle(
        self, *args: Any, dir: str | None = None, dry_run: bool = False, verbosity: int = 1, **options: Any
    ) -> None:
        directory = Path(dir) if dir else Path(settings.WARDEN_POLICY_DIR)
        try:
            report = policies_sync(documents=policy_files_load(directory=directory), dry_run=dry_run)
        except ValidationFailed as exc:
            raise CommandError(exc.detail) from None
        if verbosity:
            prefix = "Would " if dry_run else ""
            self.stdout.write(
                f"{prefix}{'load' if dry_run else 'Loaded'} {len(report.created)}, "
                f"{'retire' if dry_run else 'retired'} {len(report.retired)}, unchanged {len(report.unchanged)}."
            )
        if verbosity >= 2:
            for label, names in (("new", report.created), ("retired", report.retired)):
                for name in names:
                    self.stdout.write(f"  {label}: {name}")
