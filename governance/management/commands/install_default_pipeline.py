"""Create the default five-stage pipeline on a new installation (existing stage keys are kept)."""

from django.core.management.base import BaseCommand

from governance.services import pipeline_install_defaults


class Command(BaseCommand):
    help = __doc__

    def handle(self, *args, verbosity=1, **options):
        created = pipeline_install_defaults()
        if verbosity:
            self.stdout.write(f"Created {len(created)} stage(s): {', '.join(s.key for s in created) or 'none'}.")
