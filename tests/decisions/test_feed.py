"""The feed host platforms poll: ``GET /api/v1/feed/`` (decisions/feed_api.py, docs/hosts.md).

Entries come from ``feed_record``, as the services that approve, deploy, roll back and revoke
write them; each test reads the feed from the last ``seq`` its fixtures left, so it asserts on
its own entries only."""

import hashlib
from datetime import timedelta
from unittest.mock import ANY

import pytest
from django.contrib.auth.models import Group
from rest_framework.test import APIClient

from decisions.deployment import version_revoke
from decisions.feed import feed_last_seq, feed_record
from decisions.models import FeedEntry
from tests.conftest import make_user, token_client

pytestmark = pytest.mark.django_db

FEED = "/api/v1/feed/"


@pytest.fixture
def host(django_user_model):
    """A host platform's integration user: in *Host platforms*, nothing else."""
    return make_user(django_user_model, "host-platform", "Host platforms")


@pytest.fixture
def api(host):
    return token_client(host)


@pytest.fixture
def two_approved(make_approved):
    return make_approved("1.0.0"), make_approved("1.1.0")


def latest(version) -> FeedEntry:
    return FeedEntry.objects.filter(version=version).latest("seq")


def test_full_feed_lists_each_versions_latest_state(api, two_approved, draft):
    old, new = two_approved
    first = feed_record(version=old, event="approved")
    second = feed_record(version=new, event="approved")
    third = feed_record(version=old, event="deployed")

    response = api.get(FEED)

    assert response.status_code == 200
    body = response.json()
    assert (body["seq"], body["since"], body["next"]) == (third.seq, None, None)
    mine = [entry for entry in body["entries"] if entry["state"]["version"] in (old.pk, new.pk)]
    assert [(e["seq"], e["event"]) for e in mine] == [(second.seq, "approved"), (third.seq, "deployed")]
    assert first.seq not in [entry["seq"] for entry in body["entries"]]
    assert [entry["seq"] for entry in body["entries"]] == sorted(entry["seq"] for entry in body["entries"])
    assert len({entry["state"]["version"] for entry in body["entries"]}) == len(body["entries"])
    assert draft.pk not in {entry["state"]["version"] for entry in body["entries"]}
    state = mine[1]["state"]
    assert state == third.state
    assert (state["version"], state["status"], state["allowed"]) == (old.pk, "approved", True)
    assert state["artifact"] == {"name": old.artifact_name, "sha256": old.sha256, "size": old.size}
    assert (state["plugin"], state["organisation"], state["number"]) == ("acme-exporter", "acme", "1.0.0")
    assert mine[1]["recorded_at"] == third.created_at.isoformat().replace("+00:00", "Z")


def test_since_returns_exactly_the_entries_after_n(api, two_approved):
    old, new = two_approved
    start = feed_last_seq()
    entries = [
        feed_record(version=old, event="approved"),
        feed_record(version=new, event="approved"),
        feed_record(version=old, event="deployed"),
        feed_record(version=old, event="superseded"),
    ]

    after_first = api.get(FEED, {"since": entries[0].seq}).json()
    assert [(e["seq"], e["event"], e["state"]["version"]) for e in after_first["entries"]] == [
        (entries[1].seq, "approved", new.pk),
        (entries[2].seq, "deployed", old.pk),
        (entries[3].seq, "superseded", old.pk),
    ]
    assert (after_first["seq"], after_first["since"], after_first["next"]) == (entries[3].seq, entries[0].seq, None)
    assert [e["seq"] for e in api.get(FEED, {"since": start}).json()["entries"]] == [e.seq for e in entries]
    assert api.get(FEED, {"since": entries[3].seq}).json()["entries"] == []


def test_a_limited_answer_says_where_to_go_on(api, two_approved):
    old, new = two_approved
    start = feed_last_seq()
    entries = [feed_record(version=v, event=e) for v, e in ((old, "approved"), (new, "approved"), (old, "deployed"))]

    first = api.get(FEED, {"since": start, "limit": 2}).json()
    assert ([e["seq"] for e in first["entries"]], first["next"]) == ([entries[0].seq, entries[1].seq], entries[1].seq)
    rest = api.get(FEED, {"since": first["next"], "limit": 2}).json()
    assert ([e["seq"] for e in rest["entries"]], rest["next"]) == ([entries[2].seq], None)

    full = api.get(FEED, {"limit": 1}).json()
    assert len(full["entries"]) == 1 and full["next"] == full["entries"][0]["seq"]
    applied = {e["state"]["version"]: e["state"] for e in full["entries"]}
    for entry in api.get(FEED, {"since": full["next"]}).json()["entries"]:
        applied[entry["state"]["version"]] = entry["state"]
    assert applied[old.pk] == entries[2].state and applied[new.pk] == entries[1].state


def test_if_none_match_gets_304_in_one_query_until_a_new_entry(api, two_approved, django_assert_num_queries):
    old, new = two_approved
    entry = feed_record(version=old, event="approved")
    first = api.get(FEED)
    etag = first["ETag"]
    assert etag == f'"feed-{entry.seq}-all-1000"'
    assert first["Cache-Control"] == "private, no-cache"

    with django_assert_num_queries(1):  # the token, its user's permission and the last seq
        unchanged = api.get(FEED, HTTP_IF_NONE_MATCH=etag)
    assert (unchanged.status_code, unchanged.content, unchanged["ETag"]) == (304, b"", etag)
    assert api.get(FEED, HTTP_IF_NONE_MATCH=f'"other", W/{etag}').status_code == 304
    assert api.get(FEED, {"since": entry.seq}, HTTP_IF_NONE_MATCH=etag).status_code == 200

    feed_record(version=new, event="approved")
    changed = api.get(FEED, HTTP_IF_NONE_MATCH=etag)
    assert changed.status_code == 200
    assert changed["ETag"] != etag
    assert changed.json()["seq"] == entry.seq + 1


def test_the_full_answer_is_built_once_until_the_feed_grows(api, two_approved, django_assert_num_queries):
    old, new = two_approved
    feed_record(version=old, event="approved")
    with django_assert_num_queries(4):  # token, permission and last seq; its first use; last entry's stamp; entries
        built = api.get(FEED)
    with django_assert_num_queries(2):  # whatever its size: the listing kept is still the feed's
        again = api.get(FEED)
    assert (built.status_code, again.status_code, again.content) == (200, 200, built.content)
    assert api.get(FEED, {"limit": 1}).json()["next"] is not None  # another question, its own answer

    entry = feed_record(version=new, event="deployed")
    grown = api.get(FEED).json()
    assert grown["seq"] == entry.seq
    assert grown["entries"][-1]["seq"] == entry.seq


def test_a_sequence_number_that_comes_round_again_is_not_answered_from_the_kept_listing(api, two_approved):
    """A rolled-back transaction (or a database restored from a backup) can give a later entry
    the number of one already read: the listing kept for it is not sent for the new one."""
    old, new = two_approved
    entry = feed_record(version=old, event="approved")
    assert api.get(FEED).json()["entries"][-1]["state"]["version"] == old.pk
    seq = entry.seq
    entry.delete()
    FeedEntry.objects.create(seq=seq, version=new, event="deployed", state={"version": new.pk})
    FeedEntry.objects.filter(seq=seq).update(created_at=entry.created_at + timedelta(seconds=1))
    assert api.get(FEED).json()["entries"][-1] == {
        "seq": seq,
        "event": "deployed",
        "recorded_at": ANY,
        "state": {"version": new.pk},
    }


def test_the_unchanged_poll_checks_the_host_header(api, two_approved, settings):
    etag = api.get(FEED)["ETag"]
    settings.ALLOWED_HOSTS = ["warden.example"]
    assert api.get(FEED, HTTP_IF_NONE_MATCH=etag, HTTP_HOST="evil.example").status_code == 400
    answer = api.get(FEED, HTTP_IF_NONE_MATCH=etag, HTTP_HOST="warden.example")
    assert (answer.status_code, answer["X-Request-ID"] != "") == (304, True)


def test_a_revoked_version_is_listed_revoked_on_the_next_poll(api, make_approved, board):
    version = make_approved("1.0.0")  # the approval appends its entry
    polled = api.get(FEED)
    before = polled.json()
    assert [e["state"]["status"] for e in before["entries"] if e["state"]["version"] == version.pk] == ["approved"]

    version_revoke(version=version, actor=board, reason="Exfiltrates tokens (INC-7).")

    deltas = api.get(FEED, {"since": before["seq"]}).json()["entries"]
    assert [(e["event"], e["state"]["status"], e["state"]["allowed"]) for e in deltas] == [
        ("revoked", "revoked", False)
    ]
    full = api.get(FEED, HTTP_IF_NONE_MATCH=polled["ETag"])
    assert full.status_code == 200
    assert [e["state"]["status"] for e in full.json()["entries"] if e["state"]["version"] == version.pk] == ["revoked"]


@pytest.mark.parametrize("etag", [None, '"feed-0-all-1000"'])
def test_a_missing_or_invalid_token_is_401(etag):
    conditional = {} if etag is None else {"HTTP_IF_NONE_MATCH": etag}
    anonymous = APIClient().get(FEED, **conditional)
    assert anonymous.status_code == 401
    assert anonymous.json()["code"] == "not_authenticated"
    assert anonymous["WWW-Authenticate"] == "Token"
    for header in ("Token not-a-token", "Token", "Token a b"):
        invalid = APIClient(HTTP_AUTHORIZATION=header).get(FEED, **conditional)
        assert (invalid.status_code, invalid.json()["code"]) == (401, "authentication_failed"), header


def test_a_token_without_the_permission_is_403(outsider, author, board):
    for user in (outsider, author, board):
        response = token_client(user).get(FEED, HTTP_IF_NONE_MATCH='"feed-0-all-1000"')
        assert response.status_code == 403, user
        assert response.json() == {"code": "permission_denied", "detail": "You may not read the feed.", "errors": []}


def test_an_inactive_users_token_is_401(host):
    client = token_client(host)
    host.is_active = False
    host.save()
    assert client.get(FEED).status_code == 401
    assert client.get(FEED, HTTP_IF_NONE_MATCH='"feed-0-all-1000"').status_code == 401


def test_platform_admins_read_with_a_token_or_a_session_and_superusers_too(platform_admin, django_user_model):
    assert token_client(platform_admin).get(FEED).status_code == 200
    session = APIClient()
    session.force_login(platform_admin)
    answer = session.get(FEED)
    assert answer.status_code == 200
    assert session.get(FEED, HTTP_IF_NONE_MATCH=answer["ETag"]).status_code == 304
    root = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    assert token_client(root).get(FEED).status_code == 200


def test_the_readers_are_platform_admins_and_host_platforms(host, platform_admin, outsider):
    holders = Group.objects.filter(permissions__codename="read_feed", permissions__content_type__app_label="decisions")
    assert sorted(holders.values_list("name", flat=True)) == ["Host platforms", "Platform admins"]
    assert host.has_perm("decisions.read_feed") and platform_admin.has_perm("decisions.read_feed")
    assert not outsider.has_perm("decisions.read_feed")
    assert set(Group.objects.get(name="Host platforms").permissions.values_list("codename", flat=True)) == {"read_feed"}


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"since": "abc"}, "since"),
        ({"since": "-1"}, "since"),
        ({"since": ""}, "since"),
        ({"since": str(2**64)}, "since"),
        ({"limit": "0"}, "limit"),
        ({"limit": "10001"}, "limit"),
    ],
)
def test_a_bad_since_or_limit_is_400_with_the_apis_error_shape(api, query, field):
    for conditional in ({}, {"HTTP_IF_NONE_MATCH": '"feed-0-all-1000"'}):
        response = api.get(FEED, query, **conditional)
        assert response.status_code == 400
        body = response.json()
        assert (body["code"], body["detail"]) == ("invalid", "The request is invalid.")
        assert [(error["field"], error["code"]) for error in body["errors"]] == [(field, "invalid")]


def test_a_host_follows_a_feed_entry_to_the_attestation_and_verifies_it(api, two_approved, tmp_path):
    from django.core.management import call_command

    from decisions.models import Attestation

    entry = api.get("/api/v1/feed/").json()["entries"][-1]
    link = entry["state"]["attestation"]
    answer = api.get(link["url"])
    assert answer.status_code == 200  # the host sees no version otherwise: the feed's link must work
    assert hashlib.sha256(answer.content).hexdigest() == link["sha256"]
    version = Attestation.objects.get(sha256=link["sha256"]).version
    (tmp_path / "envelope.json").write_bytes(answer.content)
    with version.artifact.open("rb") as stored:
        (tmp_path / "artifact.zip").write_bytes(stored.read())
    call_command("verify_attestation", str(tmp_path / "envelope.json"), str(tmp_path / "artifact.zip"))


def test_the_migration_lists_the_versions_decided_before_the_feed_existed(two_approved, api):
    import importlib

    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    from decisions.models import FeedEntry

    first, second = two_approved
    FeedEntry.objects.all().delete()  # as on a database from before the feed
    migration = "0007_feed_from_existing_versions"
    apps = MigrationExecutor(connection).loader.project_state(("decisions", migration)).apps
    importlib.import_module(f"decisions.migrations.{migration}").forwards(apps, None)
    entries = api.get(FEED).json()["entries"]
    assert [(e["state"]["version"], e["state"]["status"], e["state"]["allowed"]) for e in entries] == [
        (first.pk, "approved", True),
        (second.pk, "approved", True),
    ]
    importlib.import_module(f"decisions.migrations.{migration}").forwards(apps, None)
    assert FeedEntry.objects.count() == 2  # a version already listed is left alone
