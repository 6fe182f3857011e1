from django.core.management.base import BaseCommand, CommandError

from recommendations.training.demo import make_demo_artifacts
from recommendations.training.exceptions import TrainingError, one_line
from recommendations.training.management.progress import stderr_progress


class Command(BaseCommand):
    help = (
        "Write synthetic CF and CB artifact folders OUT/cf and OUT/cb in the seed layout: skewed item "
        "popularity, purchases, factors, precomputed recommendations for part of the customers, product "
        "names and content vectors; and the purchases and catalogue behind them as OUT/interactions.csv "
        "(customer_id,item_id,weight,timestamp) and OUT/items.csv (item_id,title), which train_models "
        "reads. Existing folders and files are replaced."
    )

    def add_arguments(self, parser):
        parser.add_argument("out", metavar="OUT")
        parser.add_argument("--users", type=int, default=20000)
        parser.add_argument("--items", type=int, default=2000)
        parser.add_argument("--factors", type=int, default=32)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument(
            "--recs-share",
            type=float,
            default=0.5,
            help="share of customers with precomputed recommendations",
        )
        parser.add_argument("--top-n", type=int, default=20, help="precomputed recommendations per customer")

    def handle(self, *args, **options):
        progress = stderr_progress(self, options["verbosity"])
        try:
            summary = make_demo_artifacts(
                options["out"],
                users=options["users"],
                items=options["items"],
                factors=options["factors"],
                seed=options["seed"],
                recs_share=options["recs_share"],
                top_n=options["top_n"],
                progress=progress,
            )
        except (TrainingError, OSError) as exc:
            raise CommandError(one_line(exc)) from exc
        self.stdout.write(
            f"Wrote demo data: {summary['users']} users, {summary['items']} items, "
            f"{summary['interactions']} interactions, {summary['recommendations']} recommendations, "
            f"{summary['factors']} factors; CB {summary['cb_items']} items; "
            f"{summary['interactions_csv'].name}, {summary['items_csv'].name} in {summary['seconds']:.1f} s "
            f"-> {options['out']}"
        )
