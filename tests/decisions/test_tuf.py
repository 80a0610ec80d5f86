"""The TUF repository (decisions/tuf_repo.py): what it signs, when, and how it is served; and
python-tuf's own client (``tuf.ngclient.Updater``) updating against it through the test server.
"""

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import time_machine
import urllib3
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.utils import timezone
from django_q.models import Schedule
from tuf.api import exceptions as tuf_errors
from tuf.api.metadata import Metadata, Root
from tuf.ngclient import Updater
from tuf.ngclient.fetcher import FetcherInterface

from decisions import feed, tuf_keys, tuf_repo, tuf_targets
from decisions.deployment import version_revoke
from decisions.models import TufMetadata
from tests.conftest import make_user, token_key

pytestmark = pytest.mark.django_db
LIVE = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture
def reader(django_user_model):
    """A host platform's integration user: it may read the feed and the TUF repository."""
    user = make_user(django_user_model, "host-platform")
    user.user_permissions.add(Permission.objects.get(codename="read_feed", content_type__app_label="decisions"))
    return user


@pytest.fixture
def token(reader):
    return token_key(reader, "feed")


def path_of(version) -> str:
    return tuf_targets.target_path(
        organisation=version.plugin.organisation.slug,
        plugin=version.plugin.name,
        number=version.version,
        artifact_name=version.artifact_name,
    )


def stored(role: str, version: int | None = None) -> Metadata:
    return Metadata.from_bytes(tuf_repo.metadata_bytes(role=role, version=version))


def versions() -> dict[str, int]:
    return {role: stored(role).signed.version for role in ("root", "targets", "snapshot", "timestamp")}


# -- what is signed --------------------------------------------------------------------------------


def test_the_first_publication_makes_a_root_naming_every_key_and_signs_each_role_with_its_own(make_approved, settings):
    version = make_approved("1.0.0")
    tuf_repo.tuf_publish()

    root = stored("root", 1)
    assert root.signed.consistent_snapshot is True
    keyids = {role: tuf_keys.signer_of(role).public_key.keyid for role in tuf_keys.ROLES}
    assert {role: root.signed.roles[role].keyids for role in tuf_keys.ROLES} == {r: [k] for r, k in keyids.items()}
    root.signed.verify_delegate("root", root.signed_bytes, root.signatures)
    for role in ("targets", "snapshot", "timestamp"):
        md = stored(role)
        root.signed.verify_delegate(role, md.signed_bytes, md.signatures)

    targets = stored("targets").signed
    bin_name = targets.delegations.succinct_roles.get_role_for_target(path_of(version))
    bin_md = stored(bin_name)
    targets.verify_delegate(bin_name, bin_md.signed_bytes, bin_md.signatures)
    target = bin_md.signed.targets[path_of(version)]
    assert target.length == version.size and target.hashes == {"sha256": version.sha256}
    warden = target.custom["warden"]
    assert warden["version"] == version.pk and warden["plugin"] == "acme-exporter"
    assert warden["organisation"] == "acme" and warden["number"] == "1.0.0"

    timestamp = stored("timestamp").signed
    assert timestamp.expires - timezone.now() <= timedelta(seconds=settings.WARDEN_TUF_TIMESTAMP_EXPIRY)
    snapshot_bytes = tuf_repo.metadata_bytes(role="snapshot")
    assert timestamp.snapshot_meta.hashes == {"sha256": hashlib.sha256(snapshot_bytes).hexdigest()}
    assert len(stored("snapshot").signed.meta) == 1 + 64  # targets.json and every bin


def test_a_target_carries_the_digest_of_its_attestation(make_approved, board):
    from decisions.models import Attestation, Decision

    version = make_approved("1.0.0")
    attestation = Attestation.objects.filter(version=version).first() or Attestation.objects.create(
        version=version,
        decision=Decision.objects.filter(version=version).latest("created_at"),
        statement={},
        envelope={},
        sha256="ab" * 32,
        key_id="test",
        issued_at=timezone.now(),
    )
    tuf_repo.tuf_publish()
    bin_name = tuf_targets.BINS.get_role_for_target(path_of(version))
    assert stored(bin_name).signed.targets[path_of(version)].custom["warden"]["attestation_sha256"] == (
        attestation.sha256
    )


def test_publishing_again_with_nothing_changed_or_due_signs_nothing(make_approved):
    make_approved("1.0.0")
    tuf_repo.tuf_publish()
    before = TufMetadata.objects.count()
    assert tuf_repo.tuf_publish().signed == {}
    assert TufMetadata.objects.count() == before


def test_a_revocation_re_signs_one_bin_a_snapshot_and_a_timestamp_and_keeps_the_old_versions(
    make_approved, board, django_capture_on_commit_callbacks
):
    """The feed change queues the publication after commit (decisions/feed.py): no call here."""
    version = make_approved("1.0.0")
    kept = make_approved("1.1.0")
    tuf_repo.tuf_publish()
    before = versions()
    bin_name = tuf_targets.BINS.get_role_for_target(path_of(version))
    bin_before = stored(bin_name).signed.version

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        version_revoke(version=version, actor=board, reason="Leaks tokens.")
    assert callbacks  # the publication ran after commit, through django-q2's sync mode

    version.refresh_from_db()
    assert version.status == "revoked"
    after = versions()
    assert after == {**before, "snapshot": before["snapshot"] + 1, "timestamp": before["timestamp"] + 1}
    assert stored(bin_name).signed.version == bin_before + 1
    assert path_of(version) not in stored(bin_name).signed.targets
    kept_bin = tuf_targets.BINS.get_role_for_target(path_of(kept))
    assert path_of(kept) in stored(kept_bin).signed.targets
    snapshot = stored("snapshot").signed
    assert {name: meta.version for name, meta in snapshot.meta.items()}[f"{bin_name}.json"] == bin_before + 1
    # the versions hosts saw before are still stored, unchanged
    assert path_of(version) in stored(bin_name, bin_before).signed.targets
    assert stored("timestamp", before["timestamp"]).signed.version == before["timestamp"]
    # the scheduled run re-reads every version and agrees with what the queued one signed
    assert tuf_repo.tuf_publish().signed == {}


def test_the_scheduled_publication_re_signs_the_timestamp_once_half_its_life_is_gone(make_approved, settings):
    make_approved("1.0.0")
    tuf_repo.tuf_publish()
    before = versions()
    lifetime = timedelta(seconds=settings.WARDEN_TUF_TIMESTAMP_EXPIRY)
    with time_machine.travel(timezone.now() + lifetime * 0.4, tick=False):
        assert tuf_repo.tuf_publish().signed == {}
    with time_machine.travel(timezone.now() + lifetime * 0.6, tick=False):
        assert tuf_repo.tuf_publish().signed == {"timestamp": before["timestamp"] + 1}
        assert stored("timestamp").signed.expires > timezone.now() + lifetime * 0.9
    assert Schedule.objects.get(func="decisions.tasks.tuf_publish").minutes * 60 < lifetime.total_seconds() / 2


def test_a_key_the_root_does_not_name_is_refused(make_approved, settings, tmp_path):
    make_approved("1.0.0")
    tuf_repo.tuf_publish()
    settings.WARDEN_TUF_KEYS = {**settings.WARDEN_TUF_KEYS, "timestamp": tmp_path / "stray.pem"}
    tuf_keys.key_generate(path=tmp_path / "stray.pem")
    from django.core.exceptions import ImproperlyConfigured

    with pytest.raises(ImproperlyConfigured, match="timestamp key"):
        tuf_repo.tuf_publish(force=True)


# -- served ----------------------------------------------------------------------------------------


def test_the_repository_is_served_to_feed_readers_only(client, make_approved, token, outsider):
    version = make_approved("1.0.0")
    tuf_repo.tuf_publish()
    target_url = "/tuf/targets/" + path_of(version).replace(
        version.artifact_name, f"{version.sha256}.{version.artifact_name}"
    )
    urls = ["/tuf/1.root.json", "/tuf/timestamp.json", "/tuf/1.snapshot.json", "/tuf/1.targets.json", target_url]

    for url in urls:
        assert client.get(url).status_code == 401
    client.force_login(outsider)
    for url in urls:
        assert client.get(url).status_code == 404
    client.logout()
    auth = {"HTTP_AUTHORIZATION": f"Token {token}"}
    timestamp = client.get("/tuf/timestamp.json", **auth)
    assert timestamp.status_code == 200 and timestamp["Cache-Control"] == "no-cache"
    assert timestamp.content == tuf_repo.metadata_bytes(role="timestamp")
    snapshot = client.get("/tuf/1.snapshot.json", **auth)
    assert snapshot.status_code == 200 and "immutable" in snapshot["Cache-Control"]
    assert client.get("/tuf/2.snapshot.json", **auth).status_code == 404
    artifact = client.get(target_url, **auth)
    assert artifact.status_code == 200
    assert hashlib.sha256(b"".join(artifact.streaming_content)).hexdigest() == version.sha256
    assert client.get(target_url.replace(version.sha256, "0" * 64), **auth).status_code == 404


@time_machine.travel(datetime(2026, 12, 1, 12, 0, 10, tzinfo=UTC), tick=False)  # within one clock minute
def test_the_repository_refuses_a_token_without_the_feed_scope_and_counts_each_read(client, reader, make_approved):
    make_approved("1.0.0")
    tuf_repo.tuf_publish()
    read_only = {"HTTP_AUTHORIZATION": f"Token {token_key(reader, 'read')}"}
    assert client.get("/tuf/timestamp.json", **read_only).status_code == 404
    limited = {"HTTP_AUTHORIZATION": f"Token {token_key(reader, 'feed', rate_per_minute=2)}"}
    assert [client.get("/tuf/timestamp.json", **limited).status_code for _ in range(3)] == [200, 200, 429]
    assert client.get("/tuf/timestamp.json", **limited)["Retry-After"] == "50"


# -- python-tuf's client against the test server ---------------------------------------------------


class TokenFetcher(FetcherInterface):
    """The fetcher of docs/hosts.md: urllib3 with the feed reader's token on every request."""

    def __init__(self, token: str, rewrite: dict[str, str] | None = None) -> None:
        self.pool = urllib3.PoolManager(headers={"Authorization": f"Token {token}"})
        self.rewrite = rewrite or {}  # an attacker between host and Warden: serve this URL for that one

    def _fetch(self, url: str):
        for asked, served in self.rewrite.items():
            if url.endswith(asked):
                url = url[: -len(asked)] + served
        response = self.pool.request("GET", url, preload_content=False)
        if response.status >= 400:
            raise tuf_errors.DownloadHTTPError(f"HTTP {response.status}", response.status)
        return response.stream(65536)


def host(base: str, token: str, directory: Path, rewrite: dict[str, str] | None = None) -> Updater:
    """A host's updater; the first time, its trusted root is bootstrapped from /tuf/1.root.json."""
    metadata_dir, target_dir = directory / "metadata", directory / "targets"
    metadata_dir.mkdir(parents=True, exist_ok=True)
    target_dir.mkdir(exist_ok=True)
    trusted = metadata_dir / "root.json"
    bootstrap = None
    if not trusted.exists():
        bootstrap = urllib3.request("GET", f"{base}/tuf/1.root.json", headers={"Authorization": f"Token {token}"}).data
    return Updater(
        metadata_dir=str(metadata_dir),
        metadata_base_url=f"{base}/tuf/",
        target_dir=str(target_dir),
        target_base_url=f"{base}/tuf/targets/",
        fetcher=TokenFetcher(token, rewrite),
        bootstrap=bootstrap,
    )


@LIVE
def test_a_host_downloads_a_verified_artifact_and_after_a_revocation_no_longer_finds_it(
    live_server, make_approved, board, token, tmp_path
):
    version = make_approved("1.0.0")
    tuf_repo.tuf_publish()

    updater = host(live_server.url, token, tmp_path)
    updater.refresh()
    info = updater.get_targetinfo(path_of(version))
    assert info is not None and info.custom["warden"]["version"] == version.pk
    downloaded = Path(updater.download_target(info))
    assert hashlib.sha256(downloaded.read_bytes()).hexdigest() == version.sha256
    assert updater.find_cached_target(info) == str(downloaded)

    version_revoke(version=version, actor=board, reason="Leaks tokens.")  # queues the publication on commit

    again = host(live_server.url, token, tmp_path)
    again.refresh()
    assert again.get_targetinfo(path_of(version)) is None
    assert json.loads((tmp_path / "metadata" / "timestamp.json").read_bytes())["signed"]["version"] == 2


@LIVE
def test_a_host_refuses_a_timestamp_left_to_expire_and_accepts_the_re_signed_one(
    live_server, make_approved, token, tmp_path, settings
):
    version = make_approved("1.0.0")
    tuf_repo.tuf_publish()
    host(live_server.url, token, tmp_path).refresh()
    expired = timezone.now() + timedelta(seconds=settings.WARDEN_TUF_TIMESTAMP_EXPIRY + 60)

    with time_machine.travel(expired, tick=False):
        frozen = host(live_server.url, token, tmp_path)
        with pytest.raises(tuf_errors.ExpiredMetadataError, match="timestamp"):
            frozen.refresh()

        tuf_repo.tuf_publish()  # what the schedule does well before this point
        fresh = host(live_server.url, token, tmp_path)
        fresh.refresh()
        assert fresh.get_targetinfo(path_of(version)) is not None


class ReplayFetcher(TokenFetcher):
    """Answers some names with fixed bytes: a replayed, genuinely signed old response."""

    def __init__(self, token: str, replay: dict[str, bytes]) -> None:
        super().__init__(token)
        self.replay = replay

    def _fetch(self, url: str):
        name = url.rsplit("/", 1)[-1]
        return iter([self.replay[name]]) if name in self.replay else super()._fetch(url)


@LIVE
def test_a_host_refuses_an_older_timestamp_or_snapshot_than_the_current_one(
    live_server, make_approved, board, token, tmp_path
):
    version = make_approved("1.0.0")
    make_approved("1.1.0")
    tuf_repo.tuf_publish()  # each approval published already (feed_record): nothing new to sign
    before = versions()
    version_revoke(version=version, actor=board, reason="Leaks tokens.")
    assert versions()["timestamp"] == versions()["snapshot"] == before["timestamp"] + 1
    seen = host(live_server.url, token, tmp_path / "seen")
    seen.refresh()
    assert seen.get_targetinfo(path_of(version)) is None

    # the timestamp of before the revocation, replayed byte for byte (its signature is good)
    replayed = host(live_server.url, token, tmp_path / "seen")
    replayed._fetcher = ReplayFetcher(token, {"timestamp.json": tuf_repo.metadata_bytes(role="timestamp", version=1)})
    with pytest.raises(tuf_errors.BadVersionNumberError, match="timestamp"):
        replayed.refresh()

    # a new host asks for the current snapshot and is served the one before (still offering the revoked version)
    now = versions()["snapshot"]
    older = {f"/tuf/{now}.snapshot.json": f"/tuf/{now - 1}.snapshot.json"}
    swapped = host(live_server.url, token, tmp_path / "new", rewrite=older)
    with pytest.raises(tuf_errors.LengthOrHashMismatchError):
        swapped.refresh()


@LIVE
def test_a_rotated_timestamp_key_reaches_a_host_through_the_next_root(
    live_server, make_approved, token, tmp_path, settings
):
    keys = {role: tmp_path / "keys" / f"{role}.pem" for role in tuf_keys.ROLES}
    settings.WARDEN_TUF_KEYS = keys
    call_command("tuf_keys", verbosity=0)
    assert all(path.exists() for path in keys.values())
    version = make_approved("1.0.0")
    tuf_repo.tuf_publish()
    updater = host(live_server.url, token, tmp_path / "host")
    updater.refresh()
    old_key = keys["timestamp"].read_bytes()

    call_command("tuf_keys", rotate="timestamp", verbosity=0)

    assert keys["timestamp"].read_bytes() != old_key
    root = stored("root")
    assert root.signed.version == 2
    assert root.signed.roles["timestamp"].keyids == [tuf_keys.signer_of("timestamp").public_key.keyid]
    stored("root", 1).signed.verify_delegate("root", root.signed_bytes, root.signatures)
    rotated = host(live_server.url, token, tmp_path / "host")
    rotated.refresh()
    assert rotated.get_targetinfo(path_of(version)) is not None
    trusted = Metadata[Root].from_file(str(tmp_path / "host" / "metadata" / "root.json"))
    assert trusted.signed.version == 2


def test_tuf_keys_never_overwrites_a_key(settings, tmp_path):
    keys = {role: tmp_path / f"{role}.pem" for role in tuf_keys.ROLES}
    settings.WARDEN_TUF_KEYS = keys
    call_command("tuf_keys", verbosity=0)
    first = {role: path.read_bytes() for role, path in keys.items()}
    call_command("tuf_keys", verbosity=0)
    assert {role: path.read_bytes() for role, path in keys.items()} == first
    assert oct(keys["root"].stat().st_mode & 0o777) == "0o600"


def test_production_refuses_to_start_without_the_online_tuf_keys(monkeypatch, tmp_path, settings):
    import importlib

    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
    from django.core.exceptions import ImproperlyConfigured

    paths = {role: str(path) for role, path in settings.WARDEN_TUF_KEYS.items()}
    assert tuf_keys.tuf_keys_required({**paths, "root": ""}) == {
        role: Path(path) for role, path in paths.items() if role != "root"
    }  # the root key may stay offline
    with pytest.raises(ImproperlyConfigured, match="WARDEN_TUF_TIMESTAMP_KEY is not set"):
        tuf_keys.tuf_keys_required({**paths, "timestamp": ""})
    with pytest.raises(ImproperlyConfigured, match=r"WARDEN_TUF_SNAPSHOT_KEY: TUF key .* is missing"):
        tuf_keys.tuf_keys_required({**paths, "snapshot": str(tmp_path / "missing.pem")})
    (tmp_path / "rsa.pem").write_bytes(
        rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
            Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
        )
    )
    (tmp_path / "garbage.pem").write_text("not a key")
    with pytest.raises(ImproperlyConfigured, match="is not an Ed25519 key") as refused:
        tuf_keys.tuf_keys_required(
            {**paths, "targets": str(tmp_path / "rsa.pem"), "snapshot": str(tmp_path / "garbage.pem")}
        )
    assert "WARDEN_TUF_SNAPSHOT_KEY" in str(refused.value)  # every problem at once

    monkeypatch.setenv("DJANGO_SECRET_KEY", "x" * 50)
    monkeypatch.delenv("WARDEN_TUF_TARGETS_KEY")
    with pytest.raises(ImproperlyConfigured, match="WARDEN_TUF_TARGETS_KEY is not set"):
        importlib.reload(importlib.import_module("config.settings.production"))
    monkeypatch.setenv("WARDEN_TUF_TARGETS_KEY", paths["targets"])
    monkeypatch.delenv("WARDEN_TUF_ROOT_KEY")
    production = importlib.reload(importlib.import_module("config.settings.production"))
    assert {role: Path(p) for role, p in paths.items() if role != "root"} == production.WARDEN_TUF_KEYS
    settings.WARDEN_TUF_KEYS = production.WARDEN_TUF_KEYS
    with pytest.raises(ImproperlyConfigured, match="No root key is configured"):
        tuf_keys.signer_of("root")


def test_a_revocation_leaves_tuf_as_it_commits_without_a_worker_and_a_failed_publication_is_told(
    make_approved, board, platform_admin, settings, tmp_path, django_capture_on_commit_callbacks
):
    from unittest.mock import patch

    from django_q.conf import Conf
    from django_q.models import OrmQ

    from governance.models import Notification

    version, other = make_approved("1.0.0"), make_approved("1.1.0")
    tuf_repo.tuf_publish()
    bin_name = tuf_targets.BINS.get_role_for_target(path_of(version))
    with patch.object(Conf, "SYNC", False), django_capture_on_commit_callbacks(execute=True):
        version_revoke(version=version, actor=board, reason="Leaks tokens.")
    assert path_of(version) not in stored(bin_name).signed.targets  # no worker has run
    assert not OrmQ.objects.exists()  # published: nothing left for a worker

    settings.WARDEN_TUF_KEYS = {**settings.WARDEN_TUF_KEYS, "timestamp": tmp_path / "gone.pem"}
    with patch.object(Conf, "SYNC", False), django_capture_on_commit_callbacks(execute=True):
        version_revoke(version=other, actor=board, reason="Leaks tokens too.")
    other.refresh_from_db()
    assert other.status == "revoked"  # the kill switch is not held up by a missing key
    assert OrmQ.objects.count() == 1  # the task will try again
    (alert,) = Notification.objects.filter(event="tuf.publication_failed")
    assert alert.recipient == platform_admin and f"Version {other.pk}" in alert.body


def test_expired_superseded_metadata_is_pruned_and_every_root_kept(make_approved, board, settings):
    version = make_approved("1.0.0")
    make_approved("1.1.0")
    tuf_repo.tuf_publish()
    version_revoke(version=version, actor=board, reason="Leaks tokens.")  # a second timestamp, snapshot, bin
    before = versions()
    later = timezone.now() + timedelta(seconds=settings.WARDEN_TUF_SNAPSHOT_EXPIRY + 60)
    with time_machine.travel(later, tick=False):
        publication = tuf_repo.tuf_publish()  # the scheduled run: re-signs what expired, prunes the rest
    assert publication.pruned > 0
    for role in ("timestamp", "snapshot", "targets"):
        kept = TufMetadata.objects.filter(role=role).values_list("version", flat=True)
        assert min(kept) > 1 and max(kept) > before[role]  # the expired old ones are gone, the newest is there
    assert set(TufMetadata.objects.filter(role="root").values_list("version", flat=True)) == {1}


def test_the_platform_admins_are_reminded_to_renew_the_root_in_its_last_month(make_approved, platform_admin):
    from governance.models import Notification

    make_approved("1.0.0")
    tuf_repo.tuf_publish()
    expires = TufMetadata.objects.get(role="root").expires
    assert not tuf_repo.tuf_root_expiry_warn(now=expires - timedelta(days=31))
    assert tuf_repo.tuf_root_expiry_warn(now=expires - timedelta(days=29))
    (reminder,) = Notification.objects.filter(event="tuf.root_expiring")
    assert reminder.recipient == platform_admin and "--renew-root" in reminder.body


def test_an_artifact_missing_from_storage_is_a_clear_503_never_a_500(client, make_approved, token):
    version = make_approved("1.0.0")
    tuf_repo.tuf_publish()
    target_url = "/tuf/targets/" + path_of(version).replace(
        version.artifact_name, f"{version.sha256}.{version.artifact_name}"
    )
    version.artifact.storage.delete(version.artifact.name)
    response = client.get(target_url, HTTP_AUTHORIZATION=f"Token {token}")
    assert response.status_code == 503 and b"missing from Warden's storage" in response.content


@LIVE
def test_the_alerts_are_written_outside_any_transaction_as_the_task_and_the_commit_hook_run_them(
    platform_admin, settings, tmp_path
):
    """As in production: the on-commit hook and the scheduled task run with no transaction open."""
    from governance.models import Notification

    tuf_repo.tuf_publish()
    expires = TufMetadata.objects.get(role="root").expires
    assert tuf_repo.tuf_root_expiry_warn(now=expires - timedelta(days=1))
    settings.WARDEN_TUF_KEYS = {**settings.WARDEN_TUF_KEYS, "snapshot": tmp_path / "gone.pem"}
    from unittest.mock import patch

    from django_q.conf import Conf

    with patch.object(Conf, "SYNC", False):
        feed.tuf_follow(version_id=1, urgent=True)  # publishing fails: told, and queued for a worker
    assert set(Notification.objects.values_list("event", flat=True)) == {"tuf.root_expiring", "tuf.publication_failed"}
