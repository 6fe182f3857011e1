import datetime as dt
import sys

from django.core.management.base import BaseCommand, CommandError

from recommendations.training import cb, cf
from recommendations.training.data import FORMATS
from recommendations.training.exceptions import TrainingError
from recommendations.training.pipeline import train_models


def _date(value, option="--split-date"):
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise TrainingError(f"{option} {value!r} is not a date (use YYYY-MM-DD).") from None


class Command(BaseCommand):
    help = (
        "Train CF (implicit ALS) and CB (TF-IDF + SVD) models from an interactions file and write "
        "seed-layout artifact folders DIR/cf and DIR/cb (existing ones are replaced). "
        "Example, on the UCI Online Retail file: train_models --format online-retail "
        "--interactions online_retail.csv.xz --split-date 2011-11-01 --out artifacts/or"
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--interactions",
            required=True,
            metavar="FILE",
            help="customer_id,item_id[,weight][,timestamp] CSV, or the Online Retail file",
        )
        parser.add_argument(
            "--items", metavar="FILE", help="item_id,title[,...] CSV for the content-based model"
        )
        parser.add_argument("--format", dest="data_format", choices=FORMATS, default="generic")
        parser.add_argument(
            "--split-date",
            metavar="YYYY-MM-DD",
            help="train on what came before; write DIR/test.csv with new pairs from then on",
        )
        parser.add_argument(
            "--split-end",
            metavar="YYYY-MM-DD",
            help="end of the held-out period: events from then on are ignored (a validation window)",
        )
        parser.add_argument("--out", required=True, metavar="DIR")
        parser.add_argument("--factors", type=int, default=cf.DEFAULT_FACTORS)
        parser.add_argument("--iterations", type=int, default=cf.DEFAULT_ITERATIONS)
        parser.add_argument("--regularization", type=float, default=cf.DEFAULT_REGULARIZATION)
        parser.add_argument(
            "--alpha", type=float, default=cf.DEFAULT_ALPHA, help="confidence = 1 + alpha * weight"
        )
        parser.add_argument(
            "--top-n", type=int, default=cf.DEFAULT_TOP_N, help="recommendations precomputed per customer"
        )
        parser.add_argument(
            "--cb-components",
            type=int,
            default=cb.DEFAULT_COMPONENTS,
            help="reduce the TF-IDF item vectors to N SVD components (default: keep the terms)",
        )
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--recs-format", choices=("parquet", "csv", "pkl"), default="parquet")
        parser.add_argument("--mapping-format", choices=("pkl", "json"), default="pkl")

    def handle(self, *args, **options):
        verbose = options["verbosity"] >= 1

        def progress(message):
            if verbose:
                self.stderr.write(message, style_func=lambda text: text)

        try:
            if options["top_n"] < 1:
                raise TrainingError(f"--top-n {options['top_n']} must be at least 1.")
            if options["split_end"] and not options["split_date"]:
                raise TrainingError("--split-end needs --split-date.")
            summary = train_models(
                interactions_path=options["interactions"],
                items_path=options["items"],
                data_format=options["data_format"],
                split_date=_date(options["split_date"]) if options["split_date"] else None,
                split_end=_date(options["split_end"], "--split-end") if options["split_end"] else None,
                out_dir=options["out"],
                factors=options["factors"],
                iterations=options["iterations"],
                regularization=options["regularization"],
                alpha=options["alpha"],
                top_n=options["top_n"],
                cb_components=options["cb_components"],
                seed=options["seed"],
                recs_format=options["recs_format"],
                mapping_format=options["mapping_format"],
                progress=progress,
                show_progress_bars=verbose and sys.stderr.isatty(),
            )
        except (TrainingError, OSError) as exc:
            raise CommandError(str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from exc

        line = (
            f"Trained {summary['users']} users, {summary['items']} items, {summary['interactions']} interactions, "
            f"{summary['factors']} factors"
        )
        if summary["cb_items"]:
            line += f"; CB {summary['cb_items']} items"
        if summary["metrics"]:
            line += f"; ndcg@{summary['metrics']['k']} {summary['metrics']['cf']['ndcg']:.4f}"
        line += f" in {summary['seconds']:.1f} s -> {options['out']}"
        self.stdout.write(line)
