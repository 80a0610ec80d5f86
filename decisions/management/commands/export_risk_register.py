"""Export the register of decisions and exemptions for auditors, as CSV or JSON.

Every decided version (approved, rejected, revoked, ...) with its latest rating and policy
verdict, and every exemption with its requester, approver, scope and expiry.
"""

import csv
import json
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from decisions.selectors import risk_register


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--format", choices=["csv", "json"], default="csv")
        parser.add_argument("--output", help="A file to write (default: standard output).")

    def handle(
        self, *args: Any, format: str = "csv", output: str | None = None, verbosity: int = 1, **options: Any
    ) -> None:
        rows = risk_register()
        target = open(output, "w", newline="", encoding="utf-8") if output else self.stdout  # noqa: SIM115
        try:
            if format == "json":
                target.write(json.dumps(rows, indent=2, sort_keys=True, default=str) + "\n")
            else:
                writer = csv.DictWriter(target, fieldnames=REGISTER_FIELDS, extrasaction="ignore")
                writer.writeheader()
                writer.writerows(rows)
        finally:
            if output:
                target.close()
        if output and verbosity:
            sys.stderr.write(f"{len(rows)} entries written to {output}.\n")


REGISTER_FIELDS = [
    "entry",
    "id",
    "plugin",
    "version",
    "status",
    "at",
    "by",
    "reason",
    "rating_total",
    "rating_band",
    "rubric",
    "policies_passed",
    "scope",
    "covers",
    "requested_by",
    "approved_by",
    "expires_at",
    "compensating_controls",
]
