import json

from django.core.management.base import BaseCommand

from modelstore import selectors
from modelstore.models import ModelVersion

from ._common import human_bytes


class Command(BaseCommand):
    help = "List registered model versions, newest first."

    def add_arguments(self, parser):
        parser.add_argument("--kind", choices=ModelVersion.Kind.values)
        parser.add_argument("--json", action="store_true", help="Print a JSON array of versions.")

    def handle(self, *args, kind, **options):
        versions = list(selectors.version_list(kind=kind))
        if options["json"]:
            self.stdout.write(json.dumps([selectors.version_as_dict(v) for v in versions], indent=2))
            return
        if not versions:
            self.stdout.write("no model versions registered")
            return
        header = (
            f"{'id':>4}  {'kind':4}  {'label':32}  {'status':9}  {'active':6}  {'size':>9}  "
            f"{'users':>9}  {'items':>7}  {'recs':>11}  sha256"
        )
        self.stdout.write(header)
        for v in versions:
            # CB versions have no users, and neighbours rather than recommendations.
            users = f"{v.n_users:,}" if v.kind == "cf" else "—"
            recs = f"{v.n_recommendations:,}" if v.kind == "cf" else "—"
            self.stdout.write(
                f"{v.pk:>4}  {v.kind:4}  {v.label[:32]:32}  {v.status:9}  {'yes' if v.is_active else '':6}  "
                f"{human_bytes(v.size_bytes):>9}  {users:>9}  {v.n_items:>7,}  {recs:>11}  "
                f"{v.sha256[:12]}"
            )
