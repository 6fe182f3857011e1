from django.core.management.base import BaseCommand, CommandError

from modelstore import services
from modelstore.models import ModelVersion

from ._common import Progress, acting_user, add_user_option, command_errors, not_applied, summary


class Command(BaseCommand):
    help = "Register an existing bundle file (native or seed layout, plain or compressed) and verify it."

    def add_arguments(self, parser):
        parser.add_argument("path", help="The bundle file.")
        parser.add_argument(
            "--kind", choices=ModelVersion.Kind.values, help="Refuse the file unless it is this kind."
        )
        parser.add_argument(
            "--label", default="", help="Label for the new version (default: kind, time, hash)."
        )
        parser.add_argument("--notes", default="")
        parser.add_argument(
            "--compress",
            metavar="ALGO[:LEVEL]",
            default=None,
            help="Store re-written with this compression (none, zlib, gzip, lz4, xz).",
        )
        parser.add_argument("--activate", action="store_true", help="Activate the version once it is ready.")
        add_user_option(parser)

    def handle(self, *args, path, kind, label, notes, compress, activate, user, **options):
        user = acting_user(user) if activate else None
        progress = Progress(self.stderr._out)
        with command_errors(), progress.stage(f"registering and verifying {path}"):
            result = services.version_register(
                path=path,
                kind=kind,
                label=label,
                notes=notes,
                compress=compress,
                user=user,
                verify=services.INLINE,
                activate=activate,
            )
        version = result.version
        version.refresh_from_db()
        if version.status != ModelVersion.Status.READY:
            raise CommandError(f"version {version.pk} failed verification: {version.error}")
        prefix = "registered" if result.created else "already registered"
        self.stdout.write(f"{prefix} {summary(version, progress.seconds)}")
        if not result.created:
            for note in not_applied(version, label=label, compress=compress):
                self.stdout.write(f"  {note}")
