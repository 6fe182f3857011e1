import datetime as dt
import sys
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from modelstore import services
from recommendations.training import cb, cf
from recommendations.training.data import FORMATS
from recommendations.training.exceptions import TrainingError, one_line
from recommendations.training.management.progress import stderr_progress
from recommendations.training.pipeline import train_models


def _date(value, option="--split-date"):
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise TrainingError(f"{option} {value!r} is not a date (use YYYY-MM-DD).") from None


def _default_out(interactions):
    """Return a new run folder under the first artifact root, named after the file and the time."""
    roots = settings.HYBRIDREC_ARTIFACT_ROOTS
    if not roots:
        raise TrainingError("No artifact root to train into (HYBRIDREC_ARTIFACT_ROOTS is empty): give --out.")
    stem = Path(interactions).name.split(".")[0] or "run"
    return Path(roots[0]) / f"{stem}-{timezone.now():%Y%m%d-%H%M%S}"


class Command(BaseCommand):
    help = (
        "Train CF (implicit ALS) and CB (TF-IDF + SVD) models from an interactions file and write "
        "seed-layout artifact folders DIR/cf and DIR/cb (existing ones are replaced). "
        "Example, on the UCI Online Retail file: train_models --format online-retail "
        "--interactions online_retail.csv.xz --split-date 2011-11-01 --out artifacts/or. Without --out the "
        "folders go under the first artifact root, where the admin's Build page lists them."
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
        parser.add_argument(
            "--out",
            metavar="DIR",
            help="where to write cf/, cb/ and test.csv (default: a new folder under the first artifact root, "
            "HYBRIDREC_ARTIFACT_ROOTS, named after the interactions file and the time, so the admin can build it)",
        )
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
        parser.add_argument(
            "--engine",
            choices=("implicit", "spark"),
            default="implicit",
            help="CF trainer: implicit's ALS on this machine (default) or Spark MLlib's ALS "
            "(needs requirements-spark.txt and Java)",
        )
        parser.add_argument(
            "--spark-master",
            metavar="URL",
            help="with --engine spark: local[*], spark://host:7077, yarn, ... "
            "(default: what spark-submit was given, else local[*])",
        )
        parser.add_argument(
            "--spark-work-dir",
            metavar="DIR",
            help="with --engine spark: keep Spark's saved ALS model and indexers here (on a cluster, a "
            "folder the driver and every executor see); default a temporary folder, removed",
        )

    def handle(self, *args, **options):
        verbose = options["verbosity"] >= 1

        progress = stderr_progress(self, options["verbosity"])

        try:
            out_dir = options["out"] or _default_out(options["interactions"])
            if options["top_n"] < 1:
                raise TrainingError(f"--top-n {options['top_n']} must be at least 1.")
            if options["engine"] != "spark" and (options["spark_master"] or options["spark_work_dir"]):
                raise TrainingError("--spark-master and --spark-work-dir need --engine spark.")
            if options["split_end"] and not options["split_date"]:
                raise TrainingError("--split-end needs --split-date.")
            summary = train_models(
                interactions_path=options["interactions"],
                items_path=options["items"],
                data_format=options["data_format"],
                split_date=_date(options["split_date"]) if options["split_date"] else None,
                split_end=_date(options["split_end"], "--split-end") if options["split_end"] else None,
                out_dir=out_dir,
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
                engine=options["engine"],
                spark_master=options["spark_master"],
                spark_work_dir=options["spark_work_dir"],
                limits=services.bundle_limits(),
            )
        except (TrainingError, OSError) as exc:
            raise CommandError(one_line(exc)) from exc

        line = (
            f"Trained {summary['users']} users, {summary['items']} items, {summary['interactions']} interactions, "
            f"{summary['factors']} factors"
        )
        if summary["cb_items"]:
            line += f"; CB {summary['cb_items']} items"
        if summary["metrics"]:
            line += f"; ndcg@{summary['metrics']['k']} {summary['metrics']['cf']['ndcg']:.4f}"
        line += f" in {summary['seconds']:.1f} s -> {out_dir}"
        self.stdout.write(line)
