"""Import a compliance framework from YAML (see compliance/frameworks/default.yaml).
Unchanged content changes nothing; changed content becomes a new version."""

from pathlib import Path

import yaml
from django.core.management.base import BaseCommand, CommandError

from compliance.services import framework_import
from governance.errors import ValidationFailed


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser):
        parser.add_argument("path")

    def handle(self, *args, path, verbosity=1, **options):
        try:
            document = yaml.safe_load(Path(path).read_text())
            framework, created = framework_import(document=document)
        except (OSError, yaml.YAMLError) as exc:
            raise CommandError(f"{path}: {exc}") from None
        except ValidationFailed as exc:
            details = "; ".join(f"{e['field']}: {e['message']}" for e in exc.errors)
            raise CommandError(f"{exc.detail} {details}") from None
        if verbosity:
            self.stdout.write(
                f"{framework}: {'imported' if created else 'unchanged'} ({framework.controls.count()} controls)."
            )
