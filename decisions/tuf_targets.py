"""What the TUF repository lists: one target per artifact hosts may run, in 64 hash bins.

A target's path is ``<organisation>/<plugin>/<number>/<artifact file>``; its custom fields
name the version and the digest of its attestation (docs/hosts.md "Updating through TUF").
"""

import hashlib
import re
from collections import defaultdict
from typing import Any

from django.db.models import OuterRef, QuerySet, Subquery
from tuf.api.metadata import SuccinctRoles, TargetFile

from submissions.models import STANDING_APPROVALS, PluginVersion

from .models import Attestation

BIN_BITS = 6  # 64 bins: ~160 targets each at 10,000
BIN_PREFIX = "bins"
BINS = SuccinctRoles([], 1, BIN_BITS, BIN_PREFIX)
# Hosts may run these; a revoked or rolled-back version is no target.
ALLOWED = STANDING_APPROVALS
# Part of every bin's digest: a change to what a target says re-signs every bin once.
TARGET_FORMAT = "warden-target-1"
UNSAFE = re.compile(r"[^A-Za-z0-9._+-]")

Row = tuple[int, str, str, str, int, str, str, str | None]


def target_path(*, organisation: str, plugin: str, number: str, artifact_name: str) -> str:
    """Where a version's artifact sits in the repository: ``acme/acme-exporter/1.4.0/<file>``."""
    return "/".join(UNSAFE.sub("_", part) for part in (organisation, plugin, number, artifact_name))


def version_rows(versions: "QuerySet[PluginVersion]") -> list[Row]:
    """The fields targets are made of, for these versions (one query)."""
    attestation = Attestation.objects.filter(version=OuterRef("pk")).order_by("-issued_at", "-pk")
    return list(
        versions.annotate(attestation_sha256=Subquery(attestation.values("sha256")[:1]))
        .order_by("pk")
        .values_list(
            "pk",
            "plugin__organisation__slug",
            "plugin__name",
            "version",
            "size",
            "sha256",
            "artifact_name",
            "attestation_sha256",
        )
    )


def allowed_rows() -> list[Row]:
    """Every version hosts may run."""
    return version_rows(PluginVersion.objects.filter(status__in=ALLOWED))


def path_of(row: Row) -> str:
    return target_path(organisation=row[1], plugin=row[2], number=row[3], artifact_name=row[6])


def rows_by_bin(rows: list[Row]) -> dict[str, list[tuple[str, Row]]]:
    bins: dict[str, list[tuple[str, Row]]] = defaultdict(list)
    for row in rows:
        path = path_of(row)
        bins[BINS.get_role_for_target(path)].append((path, row))
    return bins


Entry = tuple[str, int, str, str, str, int, str, str | None]


def entry_of_row(path: str, row: Row) -> Entry:
    pk, organisation, plugin, number, size, sha256, _name, attestation = row
    return (path, pk, organisation, plugin, number, size, sha256, attestation)


def entry_of_target(target: TargetFile) -> Entry:
    warden = target.custom["warden"]
    return (
        target.path,
        warden["version"],
        warden["organisation"],
        warden["plugin"],
        warden["number"],
        target.length,
        target.hashes["sha256"],
        warden.get("attestation_sha256"),
    )


def bin_digest(entries: list[Entry]) -> str:
    """What a bin lists, as one digest: the full and the incremental publication agree on it."""
    return hashlib.sha256(repr((TARGET_FORMAT, sorted(entries))).encode()).hexdigest()


def target_file(entry: Entry) -> TargetFile:
    path, pk, organisation, plugin, number, size, sha256, attestation = entry
    warden: dict[str, Any] = {"version": pk, "organisation": organisation, "plugin": plugin, "number": number}
    if attestation:
        warden["attestation_sha256"] = attestation
    return TargetFile(size, {"sha256": sha256}, path, unrecognized_fields={"custom": {"warden": warden}})


def allowed_version(*, path: str, sha256: str) -> PluginVersion | None:
    """The version whose artifact is the target at ``path`` with this hash, if hosts may run it."""
    candidates = PluginVersion.objects.filter(sha256=sha256, status__in=ALLOWED).select_related("plugin__organisation")
    for version in candidates:
        here = target_path(
            organisation=version.plugin.organisation.slug,
            plugin=version.plugin.name,
            number=version.version,
            artifact_name=version.artifact_name,
        )
        if here == path:
            return version
    return None
