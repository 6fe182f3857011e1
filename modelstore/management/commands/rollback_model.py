from django.core.management.base import BaseCommand

from modelstore import services
from modelstore.models import ModelVersion

from ._common import command_errors, summary


class Command(BaseCommand):
    help = "Re-activate the version that was active before the current one of a kind."

    def add_arguments(self, parser):
        parser.add_argument("--kind", choices=ModelVersion.Kind.values, required=True)

    def handle(self, *args, kind, **options):
        with command_errors():
            event = services.version_rollback(kind=kind)
        version = event.to_version
        self.stdout.write(f"rolled back {kind} from {event.from_label} to {summary(version)}")
