"""Versions deployed before environments existed keep running, now in an environment.

Before this, "deployed" was one global state. If any version was ever deployed, this creates
the environment ``production`` on the default host platform and one deployment per version
that is deployed, superseded or rolled back now, with who deployed it and when (and who or
what ended it, when and why) taken from its audit events; the attestation is left empty, as
no attestation existed then. Each new row gets its history row. Platform admins are given the
environment permissions (the board and they may see environments and deployments).
"""

from django.db import migrations
from django.utils import timezone

from governance.migration_helpers import grant_permissions

GRANTS = {
    "Platform admins": [
        "decisions.add_environment",
        "decisions.change_environment",
        "decisions.view_environment",
        "decisions.view_deployment",
    ],
    "Approval board": ["decisions.view_environment", "decisions.view_deployment"],
}
STATUS_OF = {"deployed": "active", "superseded": "superseded", "rolled_back": "rolled_back"}
ENDED_BY = {"superseded": "version.supersede", "rolled_back": "version.roll_back"}
REASON = "Migrated from the audit log: deployed before environments existed."


def grant(apps, schema_editor):
    grant_permissions(apps, GRANTS)


def existing_deployments(apps, schema_editor):
    PluginVersion = apps.get_model("submissions", "PluginVersion")
    AuditEvent = apps.get_model("governance", "AuditEvent")
    Deployment = apps.get_model("decisions", "Deployment")
    versions = list(PluginVersion.objects.filter(status__in=STATUS_OF).order_by("pk"))
    events = AuditEvent.objects.filter(object_type="submissions.pluginversion")
    if not versions and not events.filter(action="version.deploy").exists():
        return  # nothing was ever deployed: the platform admins create the environments they need
    production = _production(apps)
    for version in versions:
        mine = events.filter(object_id=str(version.pk)).order_by("-seq")
        deployed = mine.filter(action="version.deploy").first()
        deployed_by_id = deployed.actor_id if deployed else None
        if deployed_by_id is None:
            deployed_by_id = _history_user(apps, version)
        # deployed_by_id stays None when no record names who deployed it: the row is kept all the same,
        # as a version that runs without a deployment could neither be rolled back nor listed where it runs
        ended = mine.filter(action=ENDED_BY[version.status]).first() if version.status in ENDED_BY else None
        row = Deployment.objects.create(
            version_id=version.pk,
            environment=production,
            status=STATUS_OF[version.status],
            attestation=None,
            deployed_by_id=deployed_by_id,
            deployed_at=deployed.created_at if deployed else version.decided_at or timezone.now(),
            reason=deployed.reason if deployed else "",
            ended_by_id=ended.actor_id if ended else None,
            ended_at=(ended.created_at if ended else timezone.now()) if version.status in ENDED_BY else None,
            end_reason=ended.reason if ended else "",
        )
        _history(apps, "HistoricalDeployment", row, [f.attname for f in Deployment._meta.concrete_fields])


def _production(apps):
    Environment = apps.get_model("decisions", "Environment")
    HostPlatform = apps.get_model("governance", "HostPlatform")
    host = HostPlatform.objects.filter(is_default=True).first() or HostPlatform.objects.order_by("pk").first()
    if host is None:
        raise RuntimeError(
            "Versions were deployed but no host platform exists: add one (admin: Governance > Host platforms, "
            "or a shell), then run migrate again."
        )
    environment, created = Environment.objects.get_or_create(
        key="production", defaults={"name": "Production", "host_platform": host, "order": 1}
    )
    if created:
        _history(apps, "HistoricalEnvironment", environment, [f.attname for f in Environment._meta.concrete_fields])
    return environment


def _history_user(apps, version):
    """Who saved the version as deployed, where the audit log does not say."""
    History = apps.get_model("submissions", "HistoricalPluginVersion")
    row = (
        History.objects.filter(id=version.pk, status="deployed", history_user__isnull=False)
        .order_by("-history_date")
        .first()
    )
    return row.history_user_id if row else None


def _history(apps, model_name, row, attnames):
    History = apps.get_model("decisions", model_name)
    History.objects.create(
        **{name: getattr(row, name) for name in attnames},
        history_date=timezone.now(),
        history_type="+",
        history_change_reason=REASON,
        history_user=None,
    )


class Migration(migrations.Migration):
    dependencies = [
        ("decisions", "0003_after_approval"),
        ("governance", "0015_risk_models_move_to_decisions"),
        ("submissions", "0003_revision_file_index"),
    ]

    operations = [
        migrations.RunPython(grant, migrations.RunPython.noop),
        migrations.RunPython(existing_deployments, migrations.RunPython.noop),
    ]
