"""Host platforms learn of the versions decided before the feed existed: one entry per version
that was ever approved (approved, deployed, superseded, rolled back, revoked), in the order they
were decided, with the state ``decisions.feed.feed_state`` gives (no attestation: they were
approved unsigned). Versions that already have an entry are left alone, so a database that
never held such versions gains nothing."""

from django.db import migrations

EVER_APPROVED = ("approved", "deployed", "superseded", "rolled_back", "revoked")
ALLOWED = ("approved", "deployed", "superseded")  # as in decisions.feed.feed_state


def forwards(apps, schema_editor):
    PluginVersion = apps.get_model("submissions", "PluginVersion")
    Deployment = apps.get_model("decisions", "Deployment")
    FeedEntry = apps.get_model("decisions", "FeedEntry")
    listed = set(FeedEntry.objects.values_list("version_id", flat=True))
    versions = (
        PluginVersion.objects.filter(status__in=EVER_APPROVED)
        .exclude(pk__in=listed)
        .select_related("plugin__organisation")
        .order_by("decided_at", "pk")
    )
    for version in versions:
        running = (
            Deployment.objects.filter(version=version, status="active")
            .select_related("environment")
            .order_by("environment__order", "environment__key")
        )
        state = {
            "version": version.pk,
            "plugin": version.plugin.name,
            "organisation": version.plugin.organisation.slug,
            "number": version.version,
            "status": version.status,
            "allowed": version.status in ALLOWED,
            "artifact": {"name": version.artifact_name, "sha256": version.sha256, "size": version.size},
            "environments": [d.environment.key for d in running],
            "attestation": None,
        }
        FeedEntry.objects.create(version=version, event=version.status, state=state)


class Migration(migrations.Migration):
    dependencies = [
        ("decisions", "0006_tuf_metadata"),
        ("submissions", "0003_revision_file_index"),
    ]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
