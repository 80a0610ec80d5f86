"""Print the manifest reference table (docs/manifest.md) from the JSON Schema; --write updates the doc."""

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from submissions.manifest_docs import BEGIN, END, manifest_reference


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser):
        parser.add_argument("--write", action="store_true", help="Replace the generated block in docs/manifest.md.")

    def handle(self, *args, write=False, **options):
        reference = manifest_reference()
        if not write:
            self.stdout.write(reference)
            return
        path = Path(settings.BASE_DIR) / "docs" / "manifest.md"
        text = path.read_text()
        start, end = text.index(BEGIN), text.index(END) + len(END)
        path.write_text(text[:start] + reference + text[end:])
        self.stdout.write(f"Updated {path}.")
