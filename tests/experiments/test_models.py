"""The database keeps at most one running experiment per kind, and arms' shares in (0, 1]."""

import pytest
from django.db import IntegrityError, transaction

from recommendations.experiments.models import Arm, Experiment

pytestmark = pytest.mark.django_db


def test_a_second_running_experiment_for_a_kind_is_refused_by_the_database():
    Experiment.objects.create(kind="cf", name="first")
    with pytest.raises(IntegrityError), transaction.atomic():
        Experiment.objects.create(kind="cf", name="second")
    Experiment.objects.create(kind="cb", name="other kind")
    Experiment.objects.filter(name="first").update(status=Experiment.Status.STOPPED)
    Experiment.objects.create(kind="cf", name="after the first stopped")


def test_an_arm_share_outside_the_unit_interval_is_refused(cf_version):
    experiment = Experiment.objects.create(kind="cf", name="shares")
    for share in (0.0, 1.5):
        with pytest.raises(IntegrityError), transaction.atomic():
            Arm.objects.create(
                experiment=experiment, version=cf_version, share=share, name="control", position=0
            )
