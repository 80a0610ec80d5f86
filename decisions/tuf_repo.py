"""The TUF repository host platforms update through (docs/hosts.md "Updating through TUF").

Built and signed with python-tuf's Metadata API and securesystemslib's ``CryptoSigner``, one
Ed25519 key per role (docs/runbook.md "TUF keys: roles and rotation"):

- ``root`` (key kept offline once the root is made) names the keys of every role;
- ``targets`` delegates every target to 64 hash bins (``bins-00`` ... ``bins-3f``, TAP 15 succinct
  delegation) and signs them: a revocation re-signs one bin of ~1/64 of the targets, not a
  10,000-entry document;
- ``snapshot`` names the version of ``targets`` and of every bin;
- ``timestamp`` names the snapshot and expires soon (WARDEN_TUF_TIMESTAMP_EXPIRY), so a host that
  stops hearing from Warden knows its view is stale.

The targets are the artifacts hosts may run: versions approved, deployed or superseded. A revoked
or rolled-back version leaves its bin at the next publication. Every signed version is stored
(``TufMetadata``) and versions only grow, so the repository never serves an older view.
"""

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.db.models import OuterRef, Subquery
from django.utils import timezone
from securesystemslib.signer import CryptoSigner
from tuf.api.metadata import (
    Delegations,
    Metadata,
    MetaFile,
    Root,
    Snapshot,
    SuccinctRoles,
    Targets,
    Timestamp,
)
from tuf.api.serialization.json import JSONSerializer

from governance.notifications import notify_platform_admins
from submissions.models import PluginVersion

from .models import TufMetadata
from .tuf_keys import ONLINE_ROLES, ROLES, key_generate, signer_of
from .tuf_targets import (
    ALLOWED,
    BIN_BITS,
    BIN_PREFIX,
    BINS,
    Entry,
    allowed_rows,
    bin_digest,
    entry_of_row,
    entry_of_target,
    rows_by_bin,
    target_file,
    version_rows,
)

ROOT_EXPIRY = timedelta(days=365)
SERIALIZER = JSONSerializer(compact=True)


@dataclass
class Publication:
    """What one publication signed: role name → new version (empty when nothing was due)."""

    signed: dict[str, int] = field(default_factory=dict)
    pruned: int = 0  # expired, superseded metadata deleted (the scheduled run)


# -- reading what is stored ----------------------------------------------------------------------


def latest(role: str) -> TufMetadata | None:
    return TufMetadata.objects.filter(role=role).order_by("-version").first()


def latest_root() -> Metadata[Root]:
    row = latest("root")
    if row is None:
        raise ImproperlyConfigured("The TUF repository has no root yet: publish once (`manage.py tuf_keys`).")
    return Metadata[Root].from_bytes(bytes(row.data))


def latest_bins() -> dict[str, TufMetadata]:
    """The newest stored version of every bin, without its data."""
    newest = TufMetadata.objects.filter(role=OuterRef("role")).order_by("-version").values("version")[:1]
    rows = TufMetadata.objects.filter(role__startswith=f"{BIN_PREFIX}-", version=Subquery(newest))
    return {row.role: row for row in rows.only("role", "version", "digest", "expires")}


def metadata_bytes(*, role: str, version: int | None = None) -> bytes | None:
    """The signed JSON of ``role`` at ``version`` (the newest if None), as hosts are served it."""
    rows = TufMetadata.objects.filter(role=role)
    row = rows.order_by("-version").first() if version is None else rows.filter(version=version).first()
    return None if row is None else bytes(row.data)


# -- signing and storing -------------------------------------------------------------------------


def _store(md: Metadata[Any], role: str, *, signers: list[CryptoSigner], digest: str = "") -> bytes:
    md.signatures.clear()
    for signer in signers:
        md.sign(signer, append=True)
    data = md.to_bytes(SERIALIZER)
    TufMetadata.objects.create(
        role=role, version=md.signed.version, data=data, digest=digest, expires=md.signed.expires
    )
    return data


def _expiry(now: datetime, seconds: int) -> datetime:
    return (now + timedelta(seconds=seconds)).replace(microsecond=0)


def _due(row: TufMetadata | None, now: datetime, lifetime: int) -> bool:
    """Re-sign once less than half the lifetime is left: the schedule runs well inside it."""
    return row is None or row.expires - now < timedelta(seconds=lifetime / 2)


def _signed_by(row: TufMetadata | None, keyid: str) -> bool:
    return row is not None and [s["keyid"] for s in json.loads(bytes(row.data))["signatures"]] == [keyid]


def root_create(*, now: datetime) -> Root:
    """Version 1 of the root, naming the key of every role (the key files settings name)."""
    root = Root(expires=(now + ROOT_EXPIRY).replace(microsecond=0), consistent_snapshot=True)
    for role in ROLES:
        root.add_key(signer_of(role).public_key, role)
    _store(Metadata(root), "root", signers=[signer_of("root")])
    return root


def _online_signers(root: Root) -> dict[str, CryptoSigner]:
    signers = {role: signer_of(role) for role in ONLINE_ROLES}
    for role, signer in signers.items():
        if signer.public_key.keyid not in root.roles[role].keyids:
            raise ImproperlyConfigured(
                f"The TUF {role} key ({signer.public_key.keyid[:12]}) is not the one the root names: "
                "rotate it with `manage.py tuf_keys --rotate` (docs/runbook.md)."
            )
    return signers


def _publish_targets(signer: CryptoSigner, *, now: datetime, force: bool) -> int | None:
    """A new top-level ``targets`` (the bin delegation) when due, or when its key changed."""
    row = latest("targets")
    if not (
        force or _due(row, now, settings.WARDEN_TUF_SNAPSHOT_EXPIRY) or not _signed_by(row, signer.public_key.keyid)
    ):
        return None
    key = signer.public_key
    bins = SuccinctRoles([key.keyid], 1, BIN_BITS, BIN_PREFIX)
    targets = Targets(
        version=(row.version + 1) if row else 1,
        expires=_expiry(now, settings.WARDEN_TUF_SNAPSHOT_EXPIRY),
        delegations=Delegations(keys={key.keyid: key}, succinct_roles=bins),
    )
    _store(Metadata(targets), "targets", signers=[signer])
    return targets.version


def _publish_bins(signer: CryptoSigner, *, now: datetime, force: bool) -> dict[str, int]:
    """Re-sign each bin whose targets changed (or that is due, or all of them when forced)."""
    current = latest_bins()
    wanted = rows_by_bin(allowed_rows())
    signed: dict[str, int] = {}
    for role in BINS.get_roles():
        entries = [entry_of_row(path, row) for path, row in wanted.get(role, [])]
        row = current.get(role)
        if _bin_store(signer, role, entries, row, now=now, force=force):
            signed[role] = row.version + 1 if row else 1
    return signed


def _publish_changed_bins(signer: CryptoSigner, *, now: datetime, version_ids: list[int]) -> dict[str, int]:
    """After a feed change: only the bins of these versions, from their stored targets, each
    version put in (if hosts may run it) or taken out. The scheduled run re-reads everything."""
    rows = version_rows(PluginVersion.objects.filter(pk__in=version_ids))
    allowed = set(PluginVersion.objects.filter(pk__in=version_ids, status__in=ALLOWED).values_list("pk", flat=True))
    current = latest_bins()
    signed: dict[str, int] = {}
    for role, changed in rows_by_bin(rows).items():
        row = current[role]
        stored_bin = Metadata[Targets].from_bytes(bytes(TufMetadata.objects.get(pk=row.pk).data)).signed
        entries = [
            entry_of_target(t) for t in stored_bin.targets.values() if t.custom["warden"]["version"] not in version_ids
        ]
        entries += [entry_of_row(path, r) for path, r in changed if r[0] in allowed]
        due = _due(row, now, settings.WARDEN_TUF_SNAPSHOT_EXPIRY)
        if _bin_store(signer, role, entries, row, now=now, force=due):
            signed[role] = row.version + 1
    return signed


def _bin_store(
    signer: CryptoSigner, role: str, entries: list[Entry], row: TufMetadata | None, *, now: datetime, force: bool
) -> bool:
    digest = bin_digest(entries)
    if (
        not force
        and row is not None
        and row.digest == digest
        and not _due(row, now, settings.WARDEN_TUF_SNAPSHOT_EXPIRY)
    ):
        return False
    targets = Targets(
        version=(row.version + 1) if row else 1,
        expires=_expiry(now, settings.WARDEN_TUF_SNAPSHOT_EXPIRY),
        targets={entry[0]: target_file(entry) for entry in entries},
    )
    _store(Metadata(targets), role, signers=[signer], digest=digest)
    return True


def _publish_snapshot(signer: CryptoSigner, *, now: datetime, changed: bool) -> int | None:
    row = latest("snapshot")
    due = _due(row, now, settings.WARDEN_TUF_SNAPSHOT_EXPIRY) or not _signed_by(row, signer.public_key.keyid)
    if not (changed or due):
        return None
    meta = {f"{role}.json": MetaFile(r.version) for role, r in sorted(latest_bins().items())}
    targets = latest("targets")
    assert targets is not None  # published just before
    meta["targets.json"] = MetaFile(targets.version)
    snapshot = Snapshot(
        version=(row.version + 1) if row else 1, expires=_expiry(now, settings.WARDEN_TUF_SNAPSHOT_EXPIRY), meta=meta
    )
    _store(Metadata(snapshot), "snapshot", signers=[signer])
    return snapshot.version


def _publish_timestamp(signer: CryptoSigner, *, now: datetime, changed: bool) -> int | None:
    row = latest("timestamp")
    due = _due(row, now, settings.WARDEN_TUF_TIMESTAMP_EXPIRY) or not _signed_by(row, signer.public_key.keyid)
    if not (changed or due):
        return None
    snapshot = latest("snapshot")
    assert snapshot is not None  # published just before
    data = bytes(snapshot.data)
    meta = MetaFile(snapshot.version, length=len(data), hashes={"sha256": hashlib.sha256(data).hexdigest()})
    timestamp = Timestamp(
        version=(row.version + 1) if row else 1,
        expires=_expiry(now, settings.WARDEN_TUF_TIMESTAMP_EXPIRY),
        snapshot_meta=meta,
    )
    _store(Metadata(timestamp), "timestamp", signers=[signer])
    return timestamp.version


def tuf_publish(*, version_ids: list[int] | None = None, force: bool = False) -> Publication:
    """Bring the repository up to what hosts may run now, and re-sign what is due.

    Enqueued after every feed change (decisions/feed.py) with the version that changed, and run
    on a schedule without one (then every allowed version is read again). Steps:

    1. the root, if there is none yet (the only time the publication reads the root key);
    2. the top-level targets, when due or when the root names a new targets key;
    3. every bin whose targets changed (a revocation: one bin; with ``version_ids``, only theirs
       are looked at), or that is due;
    4. a snapshot if anything above changed or it is due; a timestamp if the snapshot changed or
       it is due. Each new version is the previous one plus one, stored beside the old ones.
    """
    publication = Publication()
    with transaction.atomic(durable=True):
        now = timezone.now()
        # On PostgreSQL publications queue behind one another here; the (role, version)
        # constraint refuses the loser of any race elsewhere, and its task is retried.
        head = TufMetadata.objects.select_for_update().filter(role="root").order_by("-version").first()
        root = root_create(now=now) if head is None else latest_root().signed
        if head is None:
            publication.signed["root"] = 1
        signers = _online_signers(root)
        targets_version = _publish_targets(signers["targets"], now=now, force=force)
        if targets_version is not None:
            publication.signed["targets"] = targets_version
        # a new delegation key re-signs every bin under it
        bins_forced = force or (targets_version is not None and not _bins_signed_by(signers["targets"]))
        if version_ids and not bins_forced and latest_bins():
            publication.signed.update(_publish_changed_bins(signers["targets"], now=now, version_ids=version_ids))
        else:
            publication.signed.update(_publish_bins(signers["targets"], now=now, force=bins_forced))
        snapshot_version = _publish_snapshot(signers["snapshot"], now=now, changed=bool(publication.signed) or force)
        if snapshot_version is not None:
            publication.signed["snapshot"] = snapshot_version
        timestamp_version = _publish_timestamp(signers["timestamp"], now=now, changed=snapshot_version is not None)
        if timestamp_version is not None:
            publication.signed["timestamp"] = timestamp_version
        if version_ids is None:
            publication.pruned = _prune(now)
    return publication


def _prune(now: datetime) -> int:
    """Delete what no client can use any more: a version of a role other than root that has
    expired and is not the role's newest. Every root is kept (a client walks the chain of roots
    from the one it trusts), and so is every unexpired version (a client mid-refresh may ask
    for the snapshot or bin its timestamp named a moment ago)."""
    newest = TufMetadata.objects.filter(role=OuterRef("role")).order_by("-version").values("version")[:1]
    stale = TufMetadata.objects.exclude(role="root").filter(expires__lt=now).exclude(version=Subquery(newest))
    deleted, _ = stale.delete()
    return deleted


ROOT_WARN = timedelta(days=30)


def tuf_root_expiry_warn(*, now: datetime | None = None) -> bool:
    """System (daily): tell the platform admins, every day of the last 30, that the root expires;
    hosts refuse an expired root, and renewing it needs the offline root key."""
    now = now or timezone.now()
    row = latest("root")
    if row is None or row.expires - now > ROOT_WARN:
        return False
    with transaction.atomic():
        notify_platform_admins(
            event="tuf.root_expiring",
            subject=f"The TUF root (version {row.version}) expires on {row.expires:%Y-%m-%d}",
            body="Hosts refuse Warden's TUF metadata once its root has expired. Bring the root key in and run "
            '`manage.py tuf_keys --renew-root` (docs/runbook.md, "TUF keys: roles and rotation").',
        )
    return True


def _bins_signed_by(signer: CryptoSigner) -> bool:
    row = latest(f"{BIN_PREFIX}-00")
    return _signed_by(row, signer.public_key.keyid)


def root_rotate(*, role: str, new_key: CryptoSigner) -> int:
    """Sign the next root, naming ``new_key`` for ``role`` instead of its current key.

    Signed by the current root key (settings) so that hosts trusting the current root accept
    the next; a new root key signs it too, as the specification requires of a root rotation.
    Returns the new root version. Publish afterwards (with the new key file in place) to
    re-sign that role's metadata.
    """
    if role not in ROLES:
        raise ValueError(f"{role!r} is not a TUF role ({', '.join(ROLES)}).")
    with transaction.atomic(durable=True):
        TufMetadata.objects.select_for_update().filter(role="root").order_by("-version").first()
        current = latest_root()
        root = current.signed
        root_signer = signer_of("root")
        if root_signer.public_key.keyid not in root.roles["root"].keyids:
            raise ImproperlyConfigured("The root key settings name is not the current root's: hosts would refuse it.")
        for keyid in list(root.roles[role].keyids):
            root.revoke_key(keyid, role)
        root.add_key(new_key.public_key, role)
        root.version += 1
        root.expires = (timezone.now() + ROOT_EXPIRY).replace(microsecond=0)
        signers = [root_signer, new_key] if role == "root" else [root_signer]
        md = Metadata(root)
        _store(md, "root", signers=signers)
    return root.version


def key_rotate(*, role: str) -> int:
    """Replace ``role``'s key: the next root names a new key, the old key file is kept beside it
    as ``<file>.retired-<root version>``, and what that key signed is signed again. Returns the
    new root version (docs/runbook.md "TUF keys: roles and rotation")."""
    path = Path(settings.WARDEN_TUF_KEYS[role])
    staged = path.with_name(path.name + ".new")
    new_key = key_generate(path=staged)  # refuses if an interrupted rotation left one: look first
    try:
        version = root_rotate(role=role, new_key=new_key)
    except BaseException:
        staged.unlink()
        raise
    path.rename(path.with_name(f"{path.name}.retired-{version}"))
    staged.rename(path)
    tuf_publish()
    return version


def root_renew() -> int:
    """The next root with the same keys, before the current one expires (yearly)."""
    return root_rotate(role="root", new_key=signer_of("root"))
