from django.core.management.base import BaseCommand

from modelstore import services
from modelstore.models import ModelVersion

from ._common import acting_user, add_user_option, command_errors, summary


class Command(BaseCommand):
    help = "Re-activate the version that was active before the current one of a kind."

    def add_arguments(self, parser):
        parser.add_argument("--kind", choices=ModelVersion.Kind.values, required=True)
        add_user_option(parser)

    def handle(self, *args, kind, user, **options):
        user = acting_user(user)
        with command_errors():
            event = services.version_rollback(kind=kind, user=user)
        version = event.to_version
        self.stdout.write(f"rolled back {kind} from {event.from_label} to {summary(version)}")
