"""Environments and deployments: deploy, supersede in one environment only, roll back with
its notice, revoke everywhere, the feed entries, the admin, and the data migration."""

import importlib
from contextlib import contextmanager

import pytest
from django.contrib.auth.models import Group
from django.db import connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from decisions import deployment
from decisions.attestations import attestation_of
from decisions.models import Deployment, Environment, FeedEntry
from governance import roles
from governance.errors import PermissionRefused, TransitionRefused, ValidationFailed
from governance.models import AuditEvent, HostPlatform, Notification, WebhookDelivery, WebhookEndpoint
from governance.transitions import apply_transition
from submissions.models import VersionStatus
from tests.conftest import last_audit, make_environment

pytestmark = pytest.mark.django_db

NOTICES = ["version.roll_back", "version.revoke"]


@pytest.fixture
def staging(platform_admin):
    return make_environment(platform_admin, "staging", order=1)


@pytest.fixture
def production(platform_admin, staging):
    return make_environment(platform_admin, "production", order=2, requires_previous=True)


@pytest.fixture
def hook():
    """A webhook subscriber of the notices (and of nothing else)."""
    return WebhookEndpoint.objects.create(name="ops", url="https://ops.example/hook", secret="s3cret", events=NOTICES)


def deploy(version, *environments, actor, reason=""):
    return [deployment.version_deploy(version=version, environment=e, actor=actor, reason=reason) for e in environments]


def where(version) -> dict[str, str]:
    """Each environment the version has a deployment in, with that deployment's status."""
    return dict(Deployment.objects.filter(version=version).values_list("environment__key", "status"))


def status_of(version) -> str:
    version.refresh_from_db()
    return version.status


def feed_after(seq: int) -> list[tuple[str, str, list[str]]]:
    entries = FeedEntry.objects.filter(seq__gt=seq).exclude(event="approved").order_by("seq")
    return [(e.state["number"], e.event, e.state["environments"]) for e in entries]


def last_seq() -> int:
    entry = FeedEntry.objects.order_by("-seq").first()
    return entry.seq if entry else 0


@contextmanager
def nothing_changes():
    """Every row a deployment service writes, counted before and after a refused call."""
    models = [Deployment, Deployment.history.model, FeedEntry, AuditEvent, Notification, WebhookDelivery]
    before = {m: m.objects.count() for m in models}
    statuses = dict(Deployment.objects.values_list("pk", "status"))
    yield
    assert {m: m.objects.count() for m in models} == before
    assert dict(Deployment.objects.values_list("pk", "status")) == statuses


# -- deploying ----------------------------------------------------------------------------


def test_deploy_to_staging_then_production(make_approved, platform_admin, staging, production):
    version = make_approved("1.0.0")
    first, second = deploy(version, staging, production, actor=platform_admin, reason="Release 1.0")

    assert where(version) == {"staging": "active", "production": "active"}
    assert status_of(version) == VersionStatus.DEPLOYED
    for row in (first, second):
        row.refresh_from_db()
        assert (row.deployed_by, row.reason, row.ended_at) == (platform_admin, "Release 1.0", None)
        assert row.attestation == attestation_of(version=version)
        assert row.history.first().history_user == platform_admin
    event = last_audit(version)
    assert (event.action, event.actor, event.from_state, event.to_state) == (
        "version.deploy",
        platform_admin,
        "deployed",
        "deployed",
    )
    assert event.data["environment"] == "production" and event.data["deployment"] == second.pk
    assert event.data["superseded"] == []


def test_the_deployment_records_the_approvals_attestation(make_approved, platform_admin, staging):
    version = make_approved("1.0.0")
    attestation = attestation_of(version=version)
    assert attestation is not None, "an approval issues its attestation"
    (row,) = deploy(version, staging, actor=platform_admin)
    assert row.attestation == attestation
    assert last_audit(version).data["attestation"] == attestation.sha256


def test_production_refuses_a_version_that_never_ran_in_staging(make_approved, platform_admin, production):
    version = make_approved("1.0.0")
    with nothing_changes(), pytest.raises(TransitionRefused) as refused:
        deployment.version_deploy(version=version, environment=production, actor=platform_admin)
    assert refused.value.code == "previous_environment_required"
    assert refused.value.detail == (
        f"{version} must run in an earlier environment of Test host before Production (and not be rolled back there)."
    )
    assert status_of(version) == VersionStatus.APPROVED


def test_staging_on_another_host_platform_does_not_count_for_production(make_approved, platform_admin, production):
    from decisions.models import Environment
    from governance.models import HostPlatform

    other = HostPlatform.objects.create(name="Other host", api_version="2.4")
    elsewhere = deployment.environment_save(
        environment=Environment(key="other-staging", name="Other staging", host_platform=other, order=1),
        actor=platform_admin,
        changed=["key", "name", "host_platform", "order"],
    )
    version = make_approved("1.0.0")
    deploy(version, elsewhere, actor=platform_admin)
    with pytest.raises(TransitionRefused) as refused:
        deployment.version_deploy(version=version, environment=production, actor=platform_admin)
    assert refused.value.code == "previous_environment_required"


def test_production_accepts_a_version_superseded_in_staging(make_approved, platform_admin, staging, production):
    old, new = make_approved("1.0.0"), make_approved("1.1.0")
    deploy(old, staging, actor=platform_admin)
    deploy(new, staging, actor=platform_admin)  # old no longer runs anywhere
    assert status_of(old) == VersionStatus.SUPERSEDED
    deploy(old, production, actor=platform_admin)  # it did run in staging, and was not rolled back there
    assert where(old) == {"staging": "superseded", "production": "active"}
    assert status_of(old) == VersionStatus.DEPLOYED
    assert last_audit(old).action == "version.deploy"


def test_a_host_api_that_does_not_fit_is_refused(make_approved, platform_admin, staging):
    version = make_approved("1.0.0")  # host_api ">=2.0,<3"
    edge = HostPlatform.objects.create(name="Edge", api_version="3.1")
    environment = deployment.environment_save(
        environment=Environment(key="edge", name="Edge", host_platform=edge), actor=platform_admin, changed=["key"]
    )
    with nothing_changes(), pytest.raises(TransitionRefused) as refused:
        deployment.version_deploy(version=version, environment=environment, actor=platform_admin)
    assert refused.value.code == "host_api_incompatible"
    assert refused.value.detail == f"{version} cannot run in Edge: host_api '>=2.0,<3' excludes Edge's API 3.1."
    deploy(version, staging, actor=platform_admin)  # API 2.4 fits
    assert where(version) == {"staging": "active"}


def test_a_newer_version_supersedes_the_older_in_that_environment_only(
    make_approved, platform_admin, staging, production
):
    old, new = make_approved("1.0.0"), make_approved("1.1.0")
    deploy(old, staging, production, actor=platform_admin)
    deploy(new, staging, actor=platform_admin)

    assert where(old) == {"staging": "superseded", "production": "active"}
    assert where(new) == {"staging": "active"}
    assert status_of(old) == VersionStatus.DEPLOYED  # it still runs in production
    event = last_audit(old)
    assert (event.action, event.actor, event.reason) == ("version.supersede", None, f"{new} was deployed to Staging.")
    assert (event.from_state, event.to_state, event.data["environment"]) == ("deployed", "deployed", "staging")

    deploy(new, production, actor=platform_admin)
    assert where(old) == {"staging": "superseded", "production": "superseded"}
    assert status_of(old) == VersionStatus.SUPERSEDED  # it runs nowhere now
    assert (last_audit(old).from_state, last_audit(old).to_state) == ("deployed", "superseded")
    superseded = Deployment.objects.get(version=old, environment=production)
    assert (superseded.ended_by, superseded.end_reason) == (None, f"{new} was deployed to Production.")


# -- rolling back -------------------------------------------------------------------------


def test_rollback_restores_the_previous_version_in_that_environment_only_with_one_notice(
    make_approved, platform_admin, staging, production, hook
):
    old, new = make_approved("1.0.0"), make_approved("1.1.0")
    deploy(old, staging, production, actor=platform_admin)
    deploy(new, staging, production, actor=platform_admin)
    assert status_of(old) == VersionStatus.SUPERSEDED

    rolled = deployment.version_roll_back(
        version=new, environment=production, actor=platform_admin, reason="Error rate doubled.", incident="INC-7"
    )

    assert where(new) == {"staging": "active", "production": "rolled_back"}
    assert where(old) == {"staging": "superseded", "production": "active"}  # staging untouched
    assert status_of(new) == VersionStatus.DEPLOYED  # still runs in staging
    assert status_of(old) == VersionStatus.DEPLOYED  # runs again in production
    rolled.refresh_from_db()
    assert (rolled.ended_by, rolled.end_reason, rolled.incident) == (platform_admin, "Error rate doubled.", "INC-7")
    reinstated = Deployment.objects.get(version=old, environment=production)
    assert (reinstated.ended_at, reinstated.end_reason) == (None, "")
    assert last_audit(old).action == "version.reinstate"
    assert last_audit(old).reason == f"{new} was rolled back in Production."

    # the notice: one notification per recipient, one webhook delivery of one audit event
    told = Notification.objects.filter(event="version.rolled_back")
    names = list(told.values_list("recipient__username", flat=True))
    assert sorted(names) == ["acme-author", "board", "compliance", "performance", "security"]  # not the actor
    assert "INC-7" in told.first().body and "Error rate doubled." in told.first().body
    (delivery,) = WebhookDelivery.objects.all()
    (event,) = AuditEvent.objects.filter(action="version.roll_back")
    assert delivery.event == "version.roll_back" and delivery.payload["id"] == event.seq
    assert delivery.payload["object"] == {"type": "submissions.pluginversion", "id": str(new.pk), "repr": str(new)}
    assert (delivery.payload["from_state"], delivery.payload["to_state"]) == ("deployed", "deployed")
    assert delivery.payload["reason"] == "Error rate doubled."
    assert delivery.payload["data"] == {
        "environment": "production",
        "deployment": rolled.pk,
        "incident": "INC-7",
        "reinstated": {"version": old.pk, "number": "1.0.0", "deployment": reinstated.pk},
    }

    deployment.version_roll_back(version=new, environment=staging, actor=platform_admin, reason="Out of staging.")
    assert status_of(new) == VersionStatus.ROLLED_BACK  # its last deployment was rolled back
    assert where(old) == {"staging": "active", "production": "active"}
    assert WebhookDelivery.objects.count() == 2  # one notice per roll back
    assert Notification.objects.filter(event="version.rolled_back").count() == 10


def test_rolling_back_the_only_version_leaves_that_environment_empty(make_approved, platform_admin, staging):
    version = make_approved("1.0.0")
    deploy(version, staging, actor=platform_admin)
    deployment.version_roll_back(version=version, environment=staging, actor=platform_admin, reason="Crashes.")
    assert where(version) == {"staging": "rolled_back"}
    assert status_of(version) == VersionStatus.ROLLED_BACK
    assert last_audit(version).data["reinstated"] is None
    assert not Deployment.objects.filter(environment=staging, status="active").exists()


def test_the_board_may_roll_back_too(make_approved, platform_admin, board2, staging):
    version = make_approved("1.0.0")
    deploy(version, staging, actor=platform_admin)
    deployment.version_roll_back(version=version, environment=staging, actor=board2, reason="Board decision.")
    assert status_of(version) == VersionStatus.ROLLED_BACK


# -- revoking -----------------------------------------------------------------------------


def test_revocation_stops_every_environment_and_notifies(
    make_approved, platform_admin, board2, staging, production, hook
):
    old, new = make_approved("1.0.0"), make_approved("1.1.0")
    deploy(old, staging, production, actor=platform_admin)
    deploy(new, staging, production, actor=platform_admin)

    deployment.version_revoke(version=new, actor=board2, reason="Advisory GHSA-1.")

    assert where(new) == {"staging": "revoked", "production": "revoked"}
    assert where(old) == {"staging": "active", "production": "active"}  # the previous runs again in each
    assert status_of(new) == VersionStatus.REVOKED
    assert status_of(old) == VersionStatus.DEPLOYED
    event = last_audit(new)
    assert (event.action, event.actor, event.reason) == ("version.revoke", board2, "Advisory GHSA-1.")
    assert event.data["environments"] == ["staging", "production"]
    assert [r["environment"] for r in event.data["reinstated"]] == ["staging", "production"]
    assert {r["version"] for r in event.data["reinstated"]} == {old.pk}
    (delivery,) = WebhookDelivery.objects.all()
    assert delivery.event == "version.revoke" and delivery.payload["data"] == event.data
    told = set(Notification.objects.filter(event="version.revoked").values_list("recipient__username", flat=True))
    assert told == {"acme-author", "platform", "security", "performance", "compliance", "board"}
    assert Notification.objects.filter(event="version.revoked").count() == len(told)  # once each


def test_revoking_the_only_version_stops_it_everywhere(make_approved, platform_admin, board, staging, production):
    version = make_approved("1.0.0")
    deploy(version, staging, production, actor=platform_admin)
    deployment.version_revoke(version=version, actor=board, reason="Leaks tokens.")
    assert where(version) == {"staging": "revoked", "production": "revoked"}
    assert not Deployment.objects.filter(status="active").exists()
    revoked = FeedEntry.objects.filter(version=version).order_by("-seq").first()
    assert (revoked.event, revoked.state["allowed"], revoked.state["environments"]) == ("revoked", False, [])


# -- refusals -----------------------------------------------------------------------------


def test_wrong_state_or_missing_permission_is_refused_and_changes_nothing(
    make_approved, in_review, platform_admin, board, author, outsider, staging, production
):
    version = make_approved("1.0.0")
    deploy(version, staging, actor=platform_admin)
    idle = Environment.objects.create(key="idle", name="Idle", host_platform=staging.host_platform, active=False)
    refusals = [
        (PermissionRefused, "permission_denied", lambda: deploy(version, production, actor=outsider)),
        (PermissionRefused, "permission_denied", lambda: deploy(version, production, actor=author)),
        (PermissionRefused, "permission_denied", lambda: deploy(version, production, actor=board)),
        (
            PermissionRefused,
            "permission_denied",
            lambda: deployment.version_roll_back(version=version, environment=staging, actor=author, reason="x"),
        ),
        (
            PermissionRefused,
            "permission_denied",
            lambda: deployment.version_revoke(version=version, actor=platform_admin, reason="x"),
        ),
        (TransitionRefused, "invalid_transition", lambda: deploy(in_review, staging, actor=platform_admin)),
        (TransitionRefused, "already_deployed", lambda: deploy(version, staging, actor=platform_admin)),
        (ValidationFailed, "environment_inactive", lambda: deploy(version, idle, actor=platform_admin)),
        (
            TransitionRefused,
            "not_deployed",
            lambda: deployment.version_roll_back(
                version=version, environment=production, actor=platform_admin, reason="x"
            ),
        ),
        (
            ValidationFailed,
            "reason_required",
            lambda: deployment.version_roll_back(
                version=version, environment=staging, actor=platform_admin, reason=" "
            ),
        ),
        (
            ValidationFailed,
            "reason_required",
            lambda: deployment.version_revoke(version=version, actor=board, reason=""),
        ),
        (
            TransitionRefused,
            "invalid_transition",
            lambda: deployment.version_revoke(version=in_review, actor=board, reason="x"),
        ),
    ]
    for error, code, call in refusals:
        with nothing_changes(), pytest.raises(error) as refused:
            call()
        assert refused.value.code == code, refused.value.detail
    assert status_of(version) == VersionStatus.DEPLOYED
    assert where(version) == {"staging": "active"}


def test_a_rolled_back_or_revoked_version_cannot_be_deployed(make_approved, platform_admin, board, staging):
    rolled, revoked = make_approved("1.0.0"), make_approved("1.1.0")
    deploy(rolled, staging, actor=platform_admin)
    deployment.version_roll_back(version=rolled, environment=staging, actor=platform_admin, reason="Crashes.")
    deployment.version_revoke(version=revoked, actor=board, reason="Advisory.")
    for version, said in ((rolled, "rolled back"), (revoked, "revoked")):
        with nothing_changes(), pytest.raises(TransitionRefused, match=f"it is {said}"):
            deploy(version, staging, actor=platform_admin)


# -- the feed -----------------------------------------------------------------------------


def test_the_feed_records_each_change_in_order(make_approved, platform_admin, board, staging, production):
    old, new = make_approved("1.0.0"), make_approved("1.1.0")
    start = last_seq()
    deploy(old, staging, production, actor=platform_admin)
    deploy(new, staging, actor=platform_admin)
    deployment.version_roll_back(version=new, environment=staging, actor=platform_admin, reason="Crashes.")
    deployment.version_revoke(version=old, actor=board, reason="Advisory.")

    assert feed_after(start) == [
        ("1.0.0", "deployed", ["staging"]),
        ("1.0.0", "deployed", ["staging", "production"]),
        ("1.1.0", "deployed", ["staging"]),
        ("1.0.0", "superseded", ["production"]),
        ("1.1.0", "rolled_back", []),
        ("1.0.0", "reinstated", ["staging", "production"]),
        ("1.0.0", "revoked", []),
    ]


# -- the admin ----------------------------------------------------------------------------


def test_platform_admins_add_environments_through_the_service(client, platform_admin, author):
    host = HostPlatform.objects.create(name="Acme Cloud", api_version="2.4", is_default=True)
    form = {"key": "staging", "name": "Staging", "host_platform": host.pk, "order": 1, "active": "on"}
    client.force_login(author)
    assert client.post(reverse("admin:decisions_environment_add"), form).status_code == 403
    assert not Environment.objects.exists()
    client.force_login(platform_admin)
    response = client.post(reverse("admin:decisions_environment_add"), form)
    assert response.status_code == 302
    environment = Environment.objects.get()
    assert (environment.key, environment.host_platform, environment.requires_previous) == ("staging", host, False)
    assert environment.history.first().history_user == platform_admin
    event = last_audit(environment)
    assert (event.action, event.actor, event.data["host_platform"]) == (
        "environment.create",
        platform_admin,
        "Acme Cloud",
    )


def test_the_deploy_button_asks_for_the_environment(client, make_approved, platform_admin, staging, production):
    version = make_approved("1.0.0")
    url = reverse("admin:submissions_pluginversion_act", args=[version.pk, "deploy"])
    client.force_login(platform_admin)
    page = client.get(reverse("admin:submissions_pluginversion_change", args=[version.pk]))
    assert url in page.content.decode()
    form = client.get(url)
    assert form.status_code == 200
    assert [e.key for e in form.context["form"].fields["environment"].queryset] == ["staging", "production"]
    assert client.post(url, {"reason": ""}).status_code == 200  # no environment chosen: asked again
    assert not Deployment.objects.exists()

    response = client.post(url, {"environment": staging.pk, "reason": "Release"})
    assert response.status_code == 302
    assert where(version) == {"staging": "active"}
    done = client.post(url, {"environment": production.pk}, follow=True)  # allowed: it ran in staging
    assert where(version) == {"staging": "active", "production": "active"}
    assert "Deploy: done" in done.content.decode()


def test_the_roll_back_button_asks_for_environment_reason_and_incident(client, make_approved, platform_admin, staging):
    version = make_approved("1.0.0")
    deploy(version, staging, actor=platform_admin)
    url = reverse("admin:submissions_pluginversion_act", args=[version.pk, "roll_back"])
    client.force_login(platform_admin)
    form = client.get(url).context["form"]
    assert set(form.fields) == {"environment", "reason", "incident"}
    assert [e.key for e in form.fields["environment"].queryset] == ["staging"]  # where it runs
    assert client.post(url, {"environment": staging.pk, "reason": ""}).status_code == 200  # a reason is required
    assert where(version) == {"staging": "active"}
    response = client.post(url, {"environment": staging.pk, "reason": "Crashes.", "incident": "INC-9"})
    assert response.status_code == 302
    assert Deployment.objects.get(version=version).incident == "INC-9"
    assert status_of(version) == VersionStatus.ROLLED_BACK


def test_outsiders_and_authors_get_no_deployment_buttons(
    client, make_approved, platform_admin, board, staging, outsider, author
):
    version = make_approved("1.0.0")
    deploy(version, staging, actor=platform_admin)
    for name in ("deploy", "roll_back"):
        url = reverse("admin:submissions_pluginversion_act", args=[version.pk, name])
        client.force_login(outsider)  # may not see the version: as if it did not exist
        assert client.post(url, {"environment": staging.pk, "reason": "x"}).status_code == 404
        client.force_login(author)  # sees the version, holds neither permission: the service refuses
        client.post(url, {"environment": staging.pk, "reason": "x"})
        page = client.get(reverse("admin:submissions_pluginversion_change", args=[version.pk])).content.decode()
        assert url not in page
    assert where(version) == {"staging": "active"}
    changelist = reverse("admin:submissions_pluginversion_changelist")
    client.force_login(board)  # may roll back and revoke
    names = {name for name, _label in client.get(changelist).context["action_form"].fields["action"].choices}
    assert "act_revoke" in names and not names & {"act_deploy", "act_roll_back"}  # each asks where: not in lists


def test_the_deployments_list_is_read_only_and_scoped(
    client, make_approved, platform_admin, staging, production, outsider, author, django_user_model
):
    versions = [make_approved(number) for number in ("1.0.0", "1.1.0")]
    deploy(versions[0], staging, actor=platform_admin)
    changelist = reverse("admin:decisions_deployment_changelist")

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(changelist).status_code == 200
        return len(captured)

    client.force_login(platform_admin)
    queries()  # the first request also fills per-process caches (content types, permissions)
    few = queries()
    deploy(versions[0], production, actor=platform_admin)
    deploy(versions[1], staging, production, actor=platform_admin)
    assert queries() == few  # no query per row
    assert client.get(reverse("admin:decisions_deployment_add")).status_code == 403
    row = Deployment.objects.first()
    assert client.post(reverse("admin:decisions_deployment_change", args=[row.pk]), {}).status_code == 403

    client.force_login(author)
    assert len(client.get(changelist).context["cl"].result_list) == 4  # its own plugin's
    client.force_login(outsider)
    response = client.get(changelist)
    assert response.status_code == 200 and len(response.context["cl"].result_list) == 0
    hidden = client.get(reverse("admin:decisions_deployment_change", args=[row.pk]))
    assert hidden.status_code == 404  # as if it did not exist
    assert Group.objects.get(name=roles.PLATFORM_ADMINS).permissions.filter(codename="change_environment").exists()


# -- the data migration ---------------------------------------------------------------------

MIGRATION = "0004_existing_deployments"


def legacy(version, transition: str, *, actor, reason: str = "") -> None:
    """What the services wrote before environments existed: the transition and its audit row."""
    with transaction.atomic():
        apply_transition(version, transition, actor=actor, action=f"version.{transition}", reason=reason)


def migrate_existing() -> None:
    apps = MigrationExecutor(connection).loader.project_state(("decisions", MIGRATION)).apps
    importlib.import_module(f"decisions.migrations.{MIGRATION}").existing_deployments(apps, None)


def test_the_migration_makes_production_and_deployments_from_the_audit_log(make_approved, platform_admin):
    host = HostPlatform.objects.create(name="Acme Cloud", api_version="2.4", is_default=True)
    first, second, third = (make_approved(n) for n in ("1.0.0", "1.1.0", "1.2.0"))
    legacy(first, "deploy", actor=platform_admin, reason="Release 1.0")
    legacy(second, "deploy", actor=platform_admin, reason="Release 1.1")
    legacy(first, "supersede", actor=None, reason=f"{second} was deployed.")
    legacy(third, "deploy", actor=platform_admin)
    legacy(second, "supersede", actor=None, reason=f"{third} was deployed.")
    legacy(third, "roll_back", actor=platform_admin, reason="Errors after release.")
    legacy(second, "reinstate", actor=platform_admin, reason=f"{third} was rolled back.")
    pairs = [(first, "deploy"), (second, "deploy"), (third, "deploy"), (first, "supersede"), (third, "roll_back")]
    events = {
        (v.pk, action): AuditEvent.objects.filter(object_id=str(v.pk), action=f"version.{action}").latest("seq")
        for v, action in pairs
    }

    migrate_existing()

    production = Environment.objects.get()
    assert (production.key, production.name, production.host_platform, production.requires_previous) == (
        "production",
        "Production",
        host,
        False,
    )
    rows = {row.version_id: row for row in Deployment.objects.all()}
    assert {pk: row.status for pk, row in rows.items()} == {
        first.pk: "superseded",
        second.pk: "active",
        third.pk: "rolled_back",
    }
    for version in (first, second, third):
        row, deployed = rows[version.pk], events[(version.pk, "deploy")]
        assert (row.deployed_by, row.deployed_at, row.reason) == (platform_admin, deployed.created_at, deployed.reason)
        assert row.attestation is None and row.environment == production
        assert row.history.count() == 1
    assert (rows[first.pk].ended_by, rows[first.pk].ended_at) == (None, events[(first.pk, "supersede")].created_at)
    assert (rows[third.pk].ended_by, rows[third.pk].end_reason) == (platform_admin, "Errors after release.")
    assert rows[third.pk].ended_at == events[(third.pk, "roll_back")].created_at
    assert rows[second.pk].ended_at is None

    # and the services carry on from there: rolling back the migrated deployment reinstates the first
    deployment.version_roll_back(version=second, environment=production, actor=platform_admin, reason="Again.")
    assert where(first) == {"production": "active"}


def test_the_migration_creates_nothing_where_nothing_was_deployed(make_approved):
    HostPlatform.objects.create(name="Acme Cloud", api_version="2.4", is_default=True)
    make_approved("1.0.0")
    migrate_existing()
    assert not Environment.objects.exists() and not Deployment.objects.exists()


def test_deploying_an_older_version_over_a_newer_one_is_refused_as_a_rollback_in_disguise(
    make_approved, platform_admin, staging
):
    older, newer = make_approved("1.0.0"), make_approved("1.1.0")
    deploy(newer, staging, actor=platform_admin)
    notices = Notification.objects.count()
    with pytest.raises(TransitionRefused, match="roll it back instead") as refusal:
        deploy(older, staging, actor=platform_admin)
    assert refusal.value.code == "older_than_running"
    assert where(newer) == {"staging": "active"} and where(older) == {}
    assert Notification.objects.count() == notices


def test_a_rolled_back_version_can_still_be_revoked(make_approved, platform_admin, board, staging):
    version = make_approved("1.0.0")
    deploy(version, staging, actor=platform_admin)
    deployment.version_roll_back(version=version, environment=staging, actor=platform_admin, reason="Crashes.")
    version.refresh_from_db()
    assert version.status == VersionStatus.ROLLED_BACK
    deployment.version_revoke(version=version, actor=board, reason="Found to exfiltrate tokens.")
    version.refresh_from_db()
    assert version.status == VersionStatus.REVOKED
    assert FeedEntry.objects.filter(version=version).latest("seq").state["status"] == "revoked"
