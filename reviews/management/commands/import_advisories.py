"""Import OSV advisories: a JSON file, a directory (JSON, or YAML as the PyPA advisory
database keeps them), or OSV's all.zip export. Re-importing is safe: an advisory is
replaced only when its ``modified`` is newer. Entries that cannot be read are listed and
make the command exit non-zero; the rest are imported.
"""

import sys

from django.core.management.base import BaseCommand, CommandError

from reviews.advisories.osv import load_any
from reviews.advisories.store import advisories_import
from reviews.findings_data import ReportError


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser):
        parser.add_argument("path", help="A .json file, a directory, or an all.zip export.")
        parser.add_argument("--dry-run", action="store_true", help="Read and count, store nothing.")

    def handle(self, *args, path, dry_run=False, verbosity=1, **options):
        errors: list = []
        show = verbosity >= 1 and sys.stdout.isatty()

        def progress(count: int) -> None:
            if show:
                self.stdout.write(f"\r  {count} advisories read", ending="")
                self.stdout.flush()

        try:
            result = advisories_import(advisories=load_any(path, errors=errors), progress=progress, dry_run=dry_run)
        except (ReportError, OSError) as exc:
            raise CommandError(str(exc)) from None
        if show:
            self.stdout.write("")
        if verbosity:
            verb = "Would import" if dry_run else "Imported"
            self.stdout.write(f"{verb}: {result.created} new, {result.updated} updated, {result.unchanged} unchanged.")
        for error in errors[:50]:
            self.stderr.write(f"  refused: {error}")
        if errors:
            raise CommandError(f"{len(errors)} entries could not be read (first 50 listed above).")
