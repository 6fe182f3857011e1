"""TrainingRun moved to the training app; its table stays where it is."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("recommendations", "0001_training_run"),
        ("training", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="TrainingRun")],
            database_operations=[],
        ),
    ]
