"""Prove that no audit event was altered or removed since it was written.

Exits non-zero and names the first broken row. Record the printed head hash somewhere
outside the database (a ticket, a log shipper) and pass it back later with --expect-head:
a chain rewritten from scratch no longer contains it.
"""

from django.core.management.base import BaseCommand, CommandError

from governance.audit import audit_verify
from governance.models import AuditEvent


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser):
        parser.add_argument("--expect-head", help="The head hash recorded at an earlier verification.")

    def handle(self, *args, expect_head=None, verbosity=1, **options):
        def progress(count: int) -> None:
            if verbosity >= 2 and count % 10000 == 0:
                self.stdout.write(f"  checked {count} events")

        result = audit_verify(progress=progress)
        if not result.ok:
            raise CommandError(
                f"Audit log broken at row #{result.broken_seq}: {result.problem}. "
                f"{result.checked} rows before it are intact."
            )
        if expect_head and not AuditEvent.objects.filter(hash=expect_head).exists():
            raise CommandError(f"No event has the recorded head hash {expect_head}: the chain was rewritten.")
        if verbosity:
            self.stdout.write(
                self.style.SUCCESS(f"Audit log intact: {result.checked} events, head {result.head_hash}.")
            )
