"""TrainingRun moved from the recommendations app to training: a database made before the move keeps its runs."""

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("recommendations", "0001_training_run"), ("training", None)]
AFTER = [("recommendations", "0002_move_training_run"), ("training", "0001_initial")]


@pytest.mark.django_db(transaction=True)
def test_runs_recorded_before_the_move_are_read_after_it():
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old_state = executor.loader.project_state([BEFORE[0]])
    OldRun = old_state.apps.get_model("recommendations", "TrainingRun")
    OldRun.objects.create(source="events.csv", status="done")
    ContentType.objects.filter(model="trainingrun").delete()
    old_type = ContentType.objects.create(app_label="recommendations", model="trainingrun")

    executor = MigrationExecutor(connection)
    executor.migrate(AFTER)

    from recommendations.training.models import TrainingRun

    (run,) = TrainingRun.objects.all()
    assert run.source == "events.csv" and run.status == TrainingRun.Status.DONE
    assert TrainingRun._meta.app_label == "training"
    ContentType.objects.clear_cache()
    assert ContentType.objects.get_for_model(TrainingRun).pk == old_type.pk  # its permissions stay given
