"""The rubrics, ratings, policies, evaluations, decisions and exemptions (and their history)
move here from the ``governance`` app without moving their data.

State only: the tables were created by governance/migrations/0010 and keep their names
(``db_table``), so an existing database keeps every row. Their content types are relabelled,
so the permissions granted on them (governance/migrations/0011) now read ``decisions.*``
and stay with the groups that hold them.
"""

import django.db.models.deletion
import django_fsm
import simple_history.models
from django.conf import settings
from django.db import migrations, models

MOVED = [
    "riskrubric", "historicalriskrubric", "riskrating", "policy", "historicalpolicy",
    "policyevaluation", "decision", "exemption", "historicalexemption",
]


def _relabel(apps, old: str, new: str) -> None:
    ContentType = apps.get_model("contenttypes", "ContentType")
    for model in MOVED:
        if not ContentType.objects.filter(app_label=new, model=model).exists():
            ContentType.objects.filter(app_label=old, model=model).update(app_label=new)


def relabel_content_types(apps, schema_editor):
    _relabel(apps, "governance", "decisions")


def relabel_content_types_back(apps, schema_editor):
    _relabel(apps, "decisions", "governance")


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('governance', '0014_decisions_name_their_evidence'),
        ('contenttypes', '0002_remove_content_type_name'),
        ('submissions', '0002_version_revisions'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
            migrations.CreateModel(
                name='HistoricalExemption',
                fields=[
                    ('id', models.BigIntegerField(auto_created=True, blank=True, db_index=True, verbose_name='ID')),
                    ('scope', models.CharField(choices=[('version', 'One version'), ('plugin', 'Every version of the plugin')], max_length=10)),
                    ('policy_key', models.SlugField(blank=True, help_text='The policy it covers (every version of it).', max_length=80)),
                    ('finding_fingerprint', models.CharField(blank=True, help_text='The finding it covers.', max_length=64)),
                    ('finding_title', models.CharField(blank=True, max_length=300)),
                    ('justification', models.TextField()),
                    ('compensating_controls', models.JSONField(blank=True, default=list, help_text='One line per control.')),
                    ('status', django_fsm.FSMField(choices=[('requested', 'Requested'), ('approved', 'Approved'), ('rejected', 'Rejected'), ('revoked', 'Revoked'), ('expired', 'Expired')], db_index=True, default='requested', max_length=50, protected=True)),
                    ('requested_at', models.DateTimeField(blank=True, editable=False)),
                    ('decided_at', models.DateTimeField(blank=True, null=True)),
                    ('decision_reason', models.TextField(blank=True)),
                    ('expires_at', models.DateTimeField(db_index=True)),
                    ('warned_at', models.DateTimeField(blank=True, help_text='When the owners were told it expires soon.', null=True)),
                    ('history_id', models.AutoField(primary_key=True, serialize=False)),
                    ('history_date', models.DateTimeField(db_index=True)),
                    ('history_change_reason', models.CharField(max_length=100, null=True)),
                    ('history_type', models.CharField(choices=[('+', 'Created'), ('~', 'Changed'), ('-', 'Deleted')], max_length=1)),
                    ('approved_by', models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to=settings.AUTH_USER_MODEL)),
                    ('history_user', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                    ('plugin', models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='submissions.plugin')),
                    ('requested_by', models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to=settings.AUTH_USER_MODEL)),
                    ('version', models.ForeignKey(blank=True, db_constraint=False, help_text='The version, for scope *one version*.', null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='submissions.pluginversion')),
                ],
                options={
                    'verbose_name': 'historical exemption',
                    'verbose_name_plural': 'historical exemptions',
                    'db_table': 'governance_historicalexemption',
                    'ordering': ('-history_date', '-history_id'),
                    'get_latest_by': ('history_date', 'history_id'),
                },
                bases=(simple_history.models.HistoricalChanges, models.Model),
            ),
            migrations.CreateModel(
                name='HistoricalPolicy',
                fields=[
                    ('id', models.BigIntegerField(auto_created=True, blank=True, db_index=True, verbose_name='ID')),
                    ('key', models.SlugField(max_length=80)),
                    ('version', models.PositiveIntegerField(default=1)),
                    ('title', models.CharField(max_length=200)),
                    ('description', models.TextField(blank=True)),
                    ('severity', models.CharField(choices=[('critical', 'Critical'), ('high', 'High'), ('medium', 'Medium'), ('low', 'Low')], max_length=10)),
                    ('mode', models.CharField(choices=[('off', 'Off'), ('log', 'Log only'), ('enforce', 'Enforce')], max_length=10)),
                    ('message', models.TextField(help_text='Shown when the policy is violated.')),
                    ('expression', models.TextField(help_text='CEL; true means the version complies.')),
                    ('source', models.CharField(blank=True, help_text='The file it was loaded from.', max_length=300)),
                    ('content_digest', models.CharField(max_length=64)),
                    ('is_current', models.BooleanField(db_index=True, default=True)),
                    ('retired_at', models.DateTimeField(blank=True, null=True)),
                    ('created_at', models.DateTimeField(blank=True, editable=False)),
                    ('history_id', models.AutoField(primary_key=True, serialize=False)),
                    ('history_date', models.DateTimeField(db_index=True)),
                    ('history_change_reason', models.CharField(max_length=100, null=True)),
                    ('history_type', models.CharField(choices=[('+', 'Created'), ('~', 'Changed'), ('-', 'Deleted')], max_length=1)),
                    ('history_user', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ],
                options={
                    'verbose_name': 'historical policy',
                    'verbose_name_plural': 'historical policies',
                    'db_table': 'governance_historicalpolicy',
                    'ordering': ('-history_date', '-history_id'),
                    'get_latest_by': ('history_date', 'history_id'),
                },
                bases=(simple_history.models.HistoricalChanges, models.Model),
            ),
            migrations.CreateModel(
                name='HistoricalRiskRubric',
                fields=[
                    ('id', models.BigIntegerField(auto_created=True, blank=True, db_index=True, verbose_name='ID')),
                    ('key', models.SlugField(default='default')),
                    ('version', models.PositiveIntegerField(default=1)),
                    ('name', models.CharField(max_length=100)),
                    ('description', models.TextField(blank=True)),
                    ('factors', models.JSONField(help_text='{factor key: {weight, cap, mitigation}}; see docs/rubric.md.')),
                    ('bands', models.JSONField(help_text='Lowest total of each band above low, e.g. {"medium": 20, "high": 45, ...}.')),
                    ('created_at', models.DateTimeField(blank=True, editable=False)),
                    ('history_id', models.AutoField(primary_key=True, serialize=False)),
                    ('history_date', models.DateTimeField(db_index=True)),
                    ('history_change_reason', models.CharField(max_length=100, null=True)),
                    ('history_type', models.CharField(choices=[('+', 'Created'), ('~', 'Changed'), ('-', 'Deleted')], max_length=1)),
                    ('created_by', models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to=settings.AUTH_USER_MODEL)),
                    ('history_user', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ],
                options={
                    'verbose_name': 'historical risk rubric',
                    'verbose_name_plural': 'historical risk rubrics',
                    'db_table': 'governance_historicalriskrubric',
                    'ordering': ('-history_date', '-history_id'),
                    'get_latest_by': ('history_date', 'history_id'),
                },
                bases=(simple_history.models.HistoricalChanges, models.Model),
            ),
            migrations.CreateModel(
                name='Policy',
                fields=[
                    ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                    ('key', models.SlugField(max_length=80)),
                    ('version', models.PositiveIntegerField(default=1)),
                    ('title', models.CharField(max_length=200)),
                    ('description', models.TextField(blank=True)),
                    ('severity', models.CharField(choices=[('critical', 'Critical'), ('high', 'High'), ('medium', 'Medium'), ('low', 'Low')], max_length=10)),
                    ('mode', models.CharField(choices=[('off', 'Off'), ('log', 'Log only'), ('enforce', 'Enforce')], max_length=10)),
                    ('message', models.TextField(help_text='Shown when the policy is violated.')),
                    ('expression', models.TextField(help_text='CEL; true means the version complies.')),
                    ('source', models.CharField(blank=True, help_text='The file it was loaded from.', max_length=300)),
                    ('content_digest', models.CharField(max_length=64)),
                    ('is_current', models.BooleanField(db_index=True, default=True)),
                    ('retired_at', models.DateTimeField(blank=True, null=True)),
                    ('created_at', models.DateTimeField(auto_now_add=True)),
                ],
                options={
                    'verbose_name_plural': 'policies',
                    'db_table': 'governance_policy',
                    'ordering': ('key', '-version'),
                    'constraints': [models.UniqueConstraint(fields=('key', 'version'), name='policy_version_unique'), models.UniqueConstraint(condition=models.Q(('is_current', True)), fields=('key',), name='one_current_policy')],
                },
            ),
            migrations.CreateModel(
                name='RiskRating',
                fields=[
                    ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                    ('trigger', models.CharField(help_text='What asked for it: a transition, the gate, a person.', max_length=30)),
                    ('facts', models.JSONField(help_text='The fact document the rating read (docs/policies.md).')),
                    ('breakdown', models.JSONField(help_text='One row per factor: inputs, units, weight, cap, contribution, cap hit.')),
                    ('total', models.DecimalField(decimal_places=2, max_digits=5)),
                    ('band', models.CharField(choices=[('low', 'Low'), ('medium', 'Medium'), ('high', 'High'), ('critical', 'Critical')], max_length=10)),
                    ('summary', models.TextField()),
                    ('digest', models.CharField(db_index=True, max_length=64)),
                    ('created_at', models.DateTimeField(auto_now_add=True)),
                    ('created_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
                    ('version', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='risk_ratings', to='submissions.pluginversion')),
                ],
                options={
                    'db_table': 'governance_riskrating',
                    'ordering': ('-created_at', '-pk'),
                },
            ),
            migrations.CreateModel(
                name='PolicyEvaluation',
                fields=[
                    ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                    ('trigger', models.CharField(max_length=30)),
                    ('passed', models.BooleanField(help_text='No enforce-mode violation that an exemption does not cover.')),
                    ('results', models.JSONField(help_text='One row per policy: key, version, mode, severity, outcome, message.')),
                    ('digest', models.CharField(blank=True, help_text='SHA-256 of the canonical results: what a decision names as approved.', max_length=64)),
                    ('created_at', models.DateTimeField(auto_now_add=True)),
                    ('created_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
                    ('version', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='policy_evaluations', to='submissions.pluginversion')),
                    ('rating', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='decisions.riskrating')),
                ],
                options={
                    'db_table': 'governance_policyevaluation',
                    'ordering': ('-created_at', '-pk'),
                },
            ),
            migrations.CreateModel(
                name='Decision',
                fields=[
                    ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                    ('action', models.CharField(choices=[('approve', 'Approved'), ('auto_approve', 'Auto-approved'), ('reject', 'Rejected')], max_length=20)),
                    ('reason', models.TextField(blank=True)),
                    ('rating_digest', models.CharField(blank=True, max_length=64)),
                    ('evaluation_digest', models.CharField(blank=True, max_length=64)),
                    ('created_at', models.DateTimeField(auto_now_add=True)),
                    ('actor', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
                    ('version', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='decisions', to='submissions.pluginversion')),
                    ('evaluation', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='decisions.policyevaluation')),
                    ('rating', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='decisions.riskrating')),
                ],
                options={
                    'db_table': 'governance_decision',
                    'ordering': ('-created_at', '-pk'),
                },
            ),
            migrations.CreateModel(
                name='RiskRubric',
                fields=[
                    ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                    ('key', models.SlugField(default='default')),
                    ('version', models.PositiveIntegerField(default=1)),
                    ('name', models.CharField(max_length=100)),
                    ('description', models.TextField(blank=True)),
                    ('factors', models.JSONField(help_text='{factor key: {weight, cap, mitigation}}; see docs/rubric.md.')),
                    ('bands', models.JSONField(help_text='Lowest total of each band above low, e.g. {"medium": 20, "high": 45, ...}.')),
                    ('created_at', models.DateTimeField(auto_now_add=True)),
                    ('created_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
                ],
                options={
                    'db_table': 'governance_riskrubric',
                    'ordering': ('key', '-version'),
                },
            ),
            migrations.AddField(
                model_name='riskrating',
                name='rubric',
                field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='ratings', to='decisions.riskrubric'),
            ),
            migrations.CreateModel(
                name='Exemption',
                fields=[
                    ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                    ('scope', models.CharField(choices=[('version', 'One version'), ('plugin', 'Every version of the plugin')], max_length=10)),
                    ('policy_key', models.SlugField(blank=True, help_text='The policy it covers (every version of it).', max_length=80)),
                    ('finding_fingerprint', models.CharField(blank=True, help_text='The finding it covers.', max_length=64)),
                    ('finding_title', models.CharField(blank=True, max_length=300)),
                    ('justification', models.TextField()),
                    ('compensating_controls', models.JSONField(blank=True, default=list, help_text='One line per control.')),
                    ('status', django_fsm.FSMField(choices=[('requested', 'Requested'), ('approved', 'Approved'), ('rejected', 'Rejected'), ('revoked', 'Revoked'), ('expired', 'Expired')], db_index=True, default='requested', max_length=50, protected=True)),
                    ('requested_at', models.DateTimeField(auto_now_add=True)),
                    ('decided_at', models.DateTimeField(blank=True, null=True)),
                    ('decision_reason', models.TextField(blank=True)),
                    ('expires_at', models.DateTimeField(db_index=True)),
                    ('warned_at', models.DateTimeField(blank=True, help_text='When the owners were told it expires soon.', null=True)),
                    ('approved_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
                    ('plugin', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='exemptions', to='submissions.plugin')),
                    ('requested_by', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
                    ('version', models.ForeignKey(blank=True, help_text='The version, for scope *one version*.', null=True, on_delete=django.db.models.deletion.PROTECT, related_name='exemptions', to='submissions.pluginversion')),
                ],
                options={
                    'db_table': 'governance_exemption',
                    'ordering': ('expires_at', 'pk'),
                    'constraints': [models.CheckConstraint(condition=models.Q(models.Q(('policy_key', ''), models.Q(('finding_fingerprint', ''), _negated=True)), models.Q(models.Q(('policy_key', ''), _negated=True), ('finding_fingerprint', '')), _connector='OR'), name='exemption_covers_one_thing')],
                },
                bases=(django_fsm.FSMModelMixin, models.Model),
            ),
            migrations.AddConstraint(
                model_name='riskrubric',
                constraint=models.UniqueConstraint(fields=('key', 'version'), name='rubric_version_unique'),
            ),
            migrations.AddIndex(
                model_name='riskrating',
                index=models.Index(fields=['version', '-created_at'], name='governance__version_41b0e9_idx'),
            ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(relabel_content_types, relabel_content_types_back),
    ]
