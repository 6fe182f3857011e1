"""``manage.py recount_experiment ID``: rebuild an experiment's counts from its stored answers and events."""

import time

from django.core.management.base import BaseCommand, CommandError

from recommendations.experiments.counting import experiment_recount
from recommendations.experiments.exceptions import ExperimentError
from recommendations.experiments.selectors import experiment_get


class Command(BaseCommand):
    help = (
        "Count an experiment's answers and attribute its events again from the stored rows: after a "
        "count failed (hybridrec_experiment_counting_failures_total) or the attribution settings changed."
    )

    def add_arguments(self, parser):
        parser.add_argument("experiment", help="The experiment's id.")

    def handle(self, *args, **options):
        try:
            experiment = experiment_get(options["experiment"])
        except ExperimentError as exc:
            raise CommandError(str(exc)) from None
        started = time.perf_counter()
        attributed = experiment_recount(experiment=experiment)
        self.stdout.write(
            f"experiment {experiment.pk}: {attributed:,} event counts attributed in "
            f"{time.perf_counter() - started:.1f} s"
        )
