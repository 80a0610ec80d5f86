"""The TUF repository's metadata, and the schedule that keeps its timestamp from expiring."""

from django.db import migrations, models

from governance.migration_helpers import ensure_schedules

NAME = "tuf-publish"


def create_schedule(apps, schema_editor):
    # Every 5 minutes: the timestamp (at least 15 minutes, WARDEN_TUF_TIMESTAMP_EXPIRY) is re-signed
    # once half its life is gone, and a publication a lost task missed is made up for.
    ensure_schedules(apps, {NAME: ("decisions.tasks.tuf_publish", 5)})


def remove_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name=NAME).delete()


class Migration(migrations.Migration):

    dependencies = [
        ('decisions', '0005_feed_readers'),
        ('django_q', '0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more'),
    ]

    operations = [
        migrations.CreateModel(
            name='TufMetadata',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('role', models.CharField(max_length=40)),
                ('version', models.PositiveIntegerField()),
                ('data', models.BinaryField(help_text='The signed metadata, as served.')),
                ('digest', models.CharField(blank=True, help_text="SHA-256 of a bin's targets.", max_length=64)),
                ('expires', models.DateTimeField()),
                ('created_at', models.DateTimeField(auto_now_add=True)),
            ],
            options={
                'verbose_name': 'TUF metadata',
                'verbose_name_plural': 'TUF metadata',
                'ordering': ('role', '-version'),
                'constraints': [models.UniqueConstraint(fields=('role', 'version'), name='tuf_role_version_unique')],
            },
        ),
        migrations.RunPython(create_schedule, remove_schedule),
    ]
