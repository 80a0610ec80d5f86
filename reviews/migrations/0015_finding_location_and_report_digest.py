"""Findings get a location key (one place, whoever reports it) and external runs a report digest.

Existing findings get their key here from the columns they already store. The key is computed
by a frozen copy of ``reviews.findings_data.location_key`` so this migration keeps giving the
same keys when that code changes later (a change there needs a migration of its own).
"""

import hashlib
import re

from django.db import migrations, models

_VERSIONED_ROOT = re.compile(r"^[^/]+-\d+(\.\d+)*[^/]*/")
_TOOL_FAMILIES = {"semgrep oss": "semgrep", "semgrep pro": "semgrep"}
BATCH = 2000


def _location_key(tool: str, rule_id: str, path: str, line) -> str:
    path = path.replace("\\", "/")
    while path.startswith("./"):
        path = path[2:]
    location = _VERSIONED_ROOT.sub("", path.lstrip("/"))
    if not location:
        return ""
    family = " ".join(tool.casefold().split())
    family = _TOOL_FAMILIES.get(family, family)
    material = "\x1f".join([family, rule_id.strip(), location, str(line or "")])
    return hashlib.sha256(material.encode()).hexdigest()


def backfill_location_keys(apps, schema_editor):
    Finding = apps.get_model("reviews", "Finding")
    rows = Finding.objects.exclude(path="").order_by("pk").values_list("pk", "tool", "rule_id", "path", "line")
    batch = []
    for pk, tool, rule_id, path, line in rows.iterator(chunk_size=BATCH):
        batch.append(Finding(pk=pk, location_key=_location_key(tool, rule_id, path, line)))
        if len(batch) >= BATCH:
            Finding.objects.bulk_update(batch, ["location_key"])  # Finding has no history
            batch = []
    Finding.objects.bulk_update(batch, ["location_key"])


class Migration(migrations.Migration):
    dependencies = [
        ("reviews", "0014_check_run_poster"),
    ]

    operations = [
        migrations.AddField(
            model_name="checkrun",
            name="report_digest",
            field=models.CharField(
                blank=True,
                help_text="External reports: SHA-256 of the posted bytes and of what Warden derived from them "
                "(advisory matches, budget judgements). The same poster posting the same report again gets "
                "this run back, unchanged.",
                max_length=64,
            ),
        ),
        migrations.AddField(
            model_name="finding",
            name="location_key",
            field=models.CharField(
                blank=True,
                help_text="The place, whoever reports it: tool family, rule, path and line "
                "(findings_data.location_key). Findings of several sources at one place count once; never "
                "used for exemptions or triage.",
                max_length=64,
            ),
        ),
        migrations.AddIndex(
            model_name="finding",
            index=models.Index(fields=["check_run", "location_key"], name="reviews_fin_check_r_c0a05a_idx"),
        ),
        migrations.RunPython(backfill_location_keys, migrations.RunPython.noop),
    ]
