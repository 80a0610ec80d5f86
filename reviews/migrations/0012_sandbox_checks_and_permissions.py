"""The sandbox checks join the default security and performance stages; roles get the new models."""

from django.db import migrations

from governance.migration_helpers import grant_permissions

NEW_CHECKS = {"security": "security.behaviour", "performance": "performance.harness"}
CRUD = ["add", "change", "delete", "view"]


def forwards(apps, schema_editor):
    Stage = apps.get_model("governance", "Stage")
    for key, check in NEW_CHECKS.items():
        for stage in Stage.objects.filter(key=key):
            if check not in stage.checks:
                stage.checks = [*stage.checks, check]
                stage.save(update_fields=["checks"])
    models = ("threatmodel", "threatmodelelement", "threat")
    threat = [f"reviews.{verb}_{model}" for model in models for verb in CRUD]
    grant_permissions(
        apps,
        {
            "Platform admins": [f"reviews.{verb}_performancebudget" for verb in CRUD]
            + ["reviews.view_performancemetric", "reviews.view_threatmodel", "reviews.view_threat"],
            "Performance reviewers": ["reviews.view_performancebudget", "reviews.view_performancemetric"],
            "Security reviewers": ["reviews.view_threatmodel", "reviews.view_threatmodelelement", "reviews.view_threat"],
            "Approval board": ["reviews.view_performancemetric", "reviews.view_threatmodel", "reviews.view_threat"],
            "Plugin authors": threat,
        },
    )


class Migration(migrations.Migration):
    dependencies = [
        ("reviews", "0011_performance_and_threat_models"),
        ("governance", "0009_webhook_secret_out_of_history"),
    ]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
