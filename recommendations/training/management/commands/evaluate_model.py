from django.core.management.base import BaseCommand, CommandError

from modelstore import selectors
from modelstore.bundles import BundleError
from modelstore.exceptions import AmbiguousLabel, RegistryError
from recommendations.training.evaluation import METRICS, STRATEGIES, EvaluationError, evaluate_version
from recommendations.training.exceptions import one_line

COLUMNS = METRICS


def _version(value, kind):
    try:
        try:
            version = selectors.version_get(value)
        except AmbiguousLabel:  # a CF and a CB version share the label: the argument says which
            version = selectors.version_get(value, kind=kind)
    except RegistryError as exc:  # VersionNotFound
        raise CommandError(str(exc)) from None
    if version.kind != kind:
        raise CommandError(f"version {value!r} is {version.kind}, expected {kind}")
    return version


class Command(BaseCommand):
    help = (
        "Evaluate a CF version (and a CB version for cb and hybrid) on held-out interactions: "
        "precision, recall, NDCG, MAP at k, coverage and fallback share, stored on the CF version."
    )

    def add_arguments(self, parser):
        parser.add_argument("cf_version", help="CF version id or label.")
        parser.add_argument("--cb", dest="cb_version", help="CB version id or label (adds cb and hybrid).")
        parser.add_argument(
            "--test", required=True, help="CSV with customer_id,item_id held out from training."
        )
        parser.add_argument("--k", type=int, default=10)
        parser.add_argument(
            "--weight", type=float, default=None, help="Hybrid CF share (default the setting)."
        )

    def handle(self, *args, **options):
        from django.conf import settings

        cf_version = _version(options["cf_version"], "cf")
        cb_version = _version(options["cb_version"], "cb") if options["cb_version"] else None
        weight = settings.HYBRIDREC_HYBRID_WEIGHT if options["weight"] is None else options["weight"]
        try:
            metrics = evaluate_version(
                cf_version=cf_version,
                cb_version=cb_version,
                test_path=options["test"],
                k=options["k"],
                weight=weight,
            )
        except (EvaluationError, BundleError, OSError) as exc:
            raise CommandError(one_line(exc)) from exc
        k = metrics["k"]
        self.stdout.write(
            f"{metrics['customers']:,} test customers, {metrics['relevant_items']:,} held-out items "
            f"({metrics['dropped_unknown_items']:,} unknown to the catalogue left out), k={k}"
            + (f", hybrid weight {metrics['weight']:g}" if "hybrid" in metrics["strategies"] else "")
        )
        self.stdout.write(
            f"{'strategy':9} "
            + " ".join(f"{c + '@' + str(k) if c in COLUMNS[:4] else c:>14}" for c in COLUMNS)
        )
        for name in STRATEGIES:
            row = metrics["strategies"].get(name)
            if row is None:
                continue
            self.stdout.write(f"{name:9} " + " ".join(f"{row.get(c, float('nan')):>14.4f}" for c in COLUMNS))
        self.stdout.write(
            f"stored on cf version {cf_version.pk} {cf_version.label} in {metrics['seconds']:.1f} s"
        )
