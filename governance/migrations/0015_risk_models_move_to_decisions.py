"""The rubrics, ratings, policies, evaluations, decisions and exemptions now belong to the
``decisions`` app (decisions/migrations/0001_initial.py): removed from this app's state only;
the tables stay and are the decisions app's now."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('governance', '0014_decisions_name_their_evidence'),
        ('decisions', '0001_initial'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
            migrations.RemoveField(
                model_name='decision',
                name='actor',
            ),
            migrations.RemoveField(
                model_name='decision',
                name='evaluation',
            ),
            migrations.RemoveField(
                model_name='decision',
                name='rating',
            ),
            migrations.RemoveField(
                model_name='decision',
                name='version',
            ),
            migrations.RemoveField(
                model_name='exemption',
                name='approved_by',
            ),
            migrations.RemoveField(
                model_name='exemption',
                name='plugin',
            ),
            migrations.RemoveField(
                model_name='exemption',
                name='requested_by',
            ),
            migrations.RemoveField(
                model_name='exemption',
                name='version',
            ),
            migrations.RemoveField(
                model_name='historicalexemption',
                name='approved_by',
            ),
            migrations.RemoveField(
                model_name='historicalexemption',
                name='history_user',
            ),
            migrations.RemoveField(
                model_name='historicalexemption',
                name='plugin',
            ),
            migrations.RemoveField(
                model_name='historicalexemption',
                name='requested_by',
            ),
            migrations.RemoveField(
                model_name='historicalexemption',
                name='version',
            ),
            migrations.RemoveField(
                model_name='historicalpolicy',
                name='history_user',
            ),
            migrations.RemoveField(
                model_name='historicalriskrubric',
                name='created_by',
            ),
            migrations.RemoveField(
                model_name='historicalriskrubric',
                name='history_user',
            ),
            migrations.DeleteModel(
                name='Policy',
            ),
            migrations.RemoveField(
                model_name='policyevaluation',
                name='created_by',
            ),
            migrations.RemoveField(
                model_name='policyevaluation',
                name='rating',
            ),
            migrations.RemoveField(
                model_name='policyevaluation',
                name='version',
            ),
            migrations.RemoveField(
                model_name='riskrating',
                name='created_by',
            ),
            migrations.RemoveField(
                model_name='riskrating',
                name='rubric',
            ),
            migrations.RemoveField(
                model_name='riskrating',
                name='version',
            ),
            migrations.RemoveField(
                model_name='riskrubric',
                name='created_by',
            ),
            migrations.DeleteModel(
                name='Decision',
            ),
            migrations.DeleteModel(
                name='Exemption',
            ),
            migrations.DeleteModel(
                name='HistoricalExemption',
            ),
            migrations.DeleteModel(
                name='HistoricalPolicy',
            ),
            migrations.DeleteModel(
                name='HistoricalRiskRubric',
            ),
            migrations.DeleteModel(
                name='PolicyEvaluation',
            ),
            migrations.DeleteModel(
                name='RiskRating',
            ),
            migrations.DeleteModel(
                name='RiskRubric',
            ),
            ],
            database_operations=[],
        ),
    ]
