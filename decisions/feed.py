"""What host platforms learn, in order (docs/hosts.md): every change to a version a host may
run (approved, deployed to or rolled back in an environment, superseded, revoked) appends a
``FeedEntry`` with the version's state from then on, inside the transaction of the change."""

import functools
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from django.db import connections, transaction
from django.db.models import Max, Subquery, TextField
from django.db.models.functions import Cast, Coalesce
from django.urls import reverse
from django_q.tasks import async_task

from governance.notifications import notify_platform_admins
from submissions.models import STANDING_APPROVALS, PluginVersion

from .attestations import attestation_of
from .models import Deployment, DeploymentStatus, FeedEntry
from .tuf_repo import tuf_publish

logger = logging.getLogger(__name__)


def feed_state(*, version: PluginVersion) -> dict[str, Any]:
    """The version as the feed shows it: what it is, whether hosts may run it, where it runs,
    and the attestation of its approval."""
    attestation = attestation_of(version=version)
    running = (
        Deployment.objects.filter(version=version, status=DeploymentStatus.ACTIVE)
        .select_related("environment")
        .order_by("environment__order", "environment__key")
    )
    return {
        "version": version.pk,
        "plugin": version.plugin.name,
        "organisation": version.plugin.organisation.slug,
        "number": version.version,
        "status": version.status,
        "allowed": version.status in STANDING_APPROVALS,
        "artifact": {"name": version.artifact_name, "sha256": version.sha256, "size": version.size},
        "environments": [d.environment.key for d in running],
        "attestation": None
        if attestation is None
        else {
            "url": reverse("version-attestation", args=[version.pk]),
            "sha256": attestation.sha256,
        },
    }


# What a host must stop running: the TUF repository drops it as the change commits, not when a
# worker gets to it; other changes are published by the queued task.
KILL_SWITCH = frozenset({"revoked", "rolled_back"})


def feed_record(*, version: PluginVersion, event: str) -> FeedEntry:
    """Append the change to the feed (call it inside the transaction that made the change)."""
    _serialise_feed_writers()
    transaction.on_commit(lambda: tuf_follow(version_id=version.pk, urgent=event in KILL_SWITCH))
    return FeedEntry.objects.create(version=version, event=event, state=feed_state(version=version))


def tuf_follow(*, version_id: int, urgent: bool) -> None:
    """After the change committed: TUF follows the feed. An urgent change is published here and
    now (a few milliseconds: one bin, the snapshot and the timestamp); if that fails the change
    stands, the platform admins are told, and the queued task tries again like any other."""
    if urgent:
        try:
            tuf_publish(version_ids=[version_id])
            return
        except Exception as exc:  # the revocation committed; its publication must not be lost silently
            logger.exception("TUF publication of version %s failed", version_id)
            with transaction.atomic():  # the outbox row, after the change's own commit
                notify_platform_admins(
                    event="tuf.publication_failed",
                    subject="The TUF repository could not be updated after a revocation or roll back",
                    body=f"Version {version_id} may still be offered to hosts through TUF until a worker publishes "
                    f'it (the feed already lists the change). The error: {exc!r}. See docs/runbook.md, "TUF keys".',
                )
    async_task("decisions.tasks.tuf_publish", version_id)


# Any constant of the database's bigint range: the lock's name among PostgreSQL advisory locks.
FEED_WRITERS_LOCK = 0x5741_5244_4645_4544  # "WARDFEED"


def _serialise_feed_writers() -> None:
    """A sequence hands out ``seq`` at insert, but readers see it at commit: two writers that
    commit out of order would let a host read 11, ask ``?since=11`` and never learn 10. Holding
    this lock until commit makes ``seq`` order commit order. SQLite needs nothing: its
    IMMEDIATE transactions (config/settings/base.py) already admit one writer at a time."""
    connection = transaction.get_connection()
    if not connection.in_atomic_block:
        raise transaction.TransactionManagementError("feed_record runs inside the transaction of the change.")
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [FEED_WRITERS_LOCK])


class FeedRow(NamedTuple):
    """One entry as the feed API sends it; ``state`` is the stored JSON text, sent as it is."""

    seq: int
    event: str
    created_at: datetime
    state: str


@dataclass(frozen=True)
class FeedPage:
    seq: int  # the feed's latest sequence number when the page was read
    since: int | None
    rows: list[FeedRow]
    next: int | None  # more entries follow: ask again with ``?since=next``


def feed_last_seq() -> int:
    """The feed's latest sequence number, 0 while it is empty: read from the end of the
    primary key's index, by SQL the ORM writes once per process (every poll asks this, and
    building the query took longer than running it)."""
    sql, params = _last_seq_query()
    with connections[FeedEntry.objects.db].cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return row[0] if row else 0


@functools.cache
def _last_seq_query() -> tuple[str, tuple[Any, ...]]:
    return FeedEntry.objects.order_by("-seq").values_list("seq")[:1].query.sql_with_params()


def feed_entry_stamp(seq: int) -> datetime | None:
    """When entry ``seq`` was recorded (None: no such entry): with ``seq`` it names the feed's
    content up to there even where a number can come round again (a test's rolled-back
    transaction, a database restored from a backup)."""
    return FeedEntry.objects.filter(seq=seq).values_list("created_at", flat=True).first()


def feed_last_seq_expression() -> Coalesce:
    """``feed_last_seq`` inside another query (the feed API reads it with the token)."""
    return Coalesce(Subquery(FeedEntry.objects.order_by("-seq").values("seq")[:1]), 0)


def feed_page(*, since: int | None, limit: int, upto: int) -> FeedPage:
    """The entries a host applies in order, up to ``upto`` (the latest ``seq`` read before).

    Without ``since``, every version's latest entry (one row per version), oldest first; with
    it, exactly the entries after ``since``. At most ``limit`` rows: when more follow, ``next``
    is the ``seq`` of the last row, and the entries after it complete the answer (for the full
    listing too: applying every later entry in order ends in each version's latest state)."""
    entries = FeedEntry.objects.filter(seq__lte=upto)
    if since is None:
        latest = entries.values("version").annotate(last=Max("seq")).values("last")
        entries = entries.filter(seq__in=latest)
    else:
        entries = entries.filter(seq__gt=since)
    rows = [
        FeedRow(*row)
        for row in entries.order_by("seq").values_list("seq", "event", "created_at", Cast("state", TextField()))[
            : limit + 1
        ]
    ]
    more = len(rows) > limit
    return FeedPage(seq=upto, since=since, rows=rows[:limit], next=rows[limit - 1].seq if more else None)
