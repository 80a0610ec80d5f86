"""Export a compliance framework (its latest version, or --framework-version N) as YAML, for version control."""

import yaml
from django.core.management.base import BaseCommand, CommandError

from compliance.models import Framework
from compliance.services import framework_export


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser):
        parser.add_argument("key")
        parser.add_argument("--framework-version", type=int, dest="framework_version")

    def handle(self, *args, key, framework_version=None, **options):
        version = framework_version
        frameworks = Framework.objects.filter(key=key)
        framework = frameworks.filter(version=version).first() if version else frameworks.order_by("-version").first()
        if framework is None:
            raise CommandError(f"No framework {key!r}" + (f" version {version}." if version else "."))
        self.stdout.write(yaml.safe_dump(framework_export(framework=framework), sort_keys=False, allow_unicode=True))
