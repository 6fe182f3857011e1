from django.core.management.base import BaseCommand

from modelstore import selectors, services

from ._common import acting_user, add_user_option, command_errors, summary


class Command(BaseCommand):
    help = "Activate a ready model version (by id or label); every web process serves it within seconds."

    def add_arguments(self, parser):
        parser.add_argument("version", help="Version id or label.")
        add_user_option(parser)

    def handle(self, *args, version, user, **options):
        user = acting_user(user)
        with command_errors():
            target = selectors.version_get(version)
            event = services.version_activate(version=target, user=user)
        target.refresh_from_db()
        if event is None:
            self.stdout.write(f"already active: {summary(target)}")
        else:
            by = (
                f", recorded as {user.get_username()}" if user else ", recorded as made from the command line"
            )
            self.stdout.write(f"activated {summary(target)} (was {event.from_label or 'none'}){by}")
