from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from modelstore.bundles import BundleError
from modelstore.exceptions import RegistryError
from recommendations.training.demo_registry import LABELS, SPLIT_DATE, demo_prepare
from recommendations.training.evaluation import EvaluationError
from recommendations.training.exceptions import TrainingError, one_line
from recommendations.training.management.progress import stderr_progress


class Command(BaseCommand):
    help = (
        "Set up the demo: synthetic purchases in DATA_DIR, a default CF model (demo-cf), a weak one "
        "(demo-cf-weak, 8 factors) and a CB model (demo-cb) trained into the first artifact root on the "
        f"purchases before {SPLIT_DATE}, evaluated on the later ones (metrics stored for the admin), and "
        "demo-cf and demo-cb activated where no version of their kind is active. Does nothing when the "
        "demo versions already exist."
    )

    def add_arguments(self, parser):
        parser.add_argument("data_dir", metavar="DATA_DIR")
        parser.add_argument("--users", type=int, default=20000)
        parser.add_argument("--items", type=int, default=2000)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument(
            "--user",
            default="demo",
            help="the account the demo versions are built and activated by (made without a password "
            "when missing; demo_user gives it one)",
        )

    def handle(self, *args, data_dir, users, items, seed, user, **options):
        progress = stderr_progress(self, options["verbosity"], at_least=2)
        account = _demo_account(user)
        try:
            result = demo_prepare(
                data_dir=data_dir, users=users, items=items, seed=seed, progress=progress, user=account
            )
        except (TrainingError, EvaluationError, BundleError, RegistryError, OSError) as exc:
            raise CommandError(one_line(exc)) from exc
        if not result.created:
            labels = ", ".join(version.label for version in result.versions.values())
            self.stdout.write(
                f"Demo already set up ({labels}): nothing changed. `make clean-demo` starts over."
            )
            return
        data = result.data
        self.stdout.write(
            f"Demo set up in {result.seconds:.0f} s: {data['users']:,} customers, {data['items']:,} items, "
            f"{data['interactions']:,} purchases; models trained on those before {SPLIT_DATE}."
        )
        first = result.metrics["cf"]
        self.stdout.write(
            f"NDCG@{first['k']} on the later purchases of {first['customers']:,} customers "
            "(stored; compare them in the admin):"
        )
        self.stdout.write(f"  {'version':14} {'factors':>7} {'cf':>7} {'popular':>7}  cf/popular")
        for role in ("cf", "weak"):
            version, ndcg = result.versions[role], _ndcg(result.metrics[role])
            ratio = ndcg["cf"] / ndcg["popular"] if ndcg["popular"] else float("inf")
            self.stdout.write(
                f"  {version.label:14} {version.n_factors:>7} {ndcg['cf']:>7.4f} {ndcg['popular']:>7.4f}  {ratio:.2f}x"
            )
        if result.activated:
            self.stdout.write("Activated " + " and ".join(v.label for v in result.activated) + ".")
        for active in result.left_active:
            self.stdout.write(
                f"Left {active.kind} version {active.label} active; activate {LABELS[active.kind]} to try it."
            )


def _demo_account(username):
    """Return the demo's account, made without a usable password when it does not exist yet."""
    users = get_user_model()
    account = users.objects.filter(username=username).first()
    if account is None:
        account = users(username=username)
        account.set_unusable_password()
        account.save()
    return account


def _ndcg(metrics):
    return {name: row["ndcg"] for name, row in metrics["strategies"].items()}
