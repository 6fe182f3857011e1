import os
import secrets
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from rest_framework.authtoken.models import Token

from modelstore import selectors, storage
from modelstore.bundles import BundleError, open_bundle


def _first_id(version, name, index=0):
    bundle = open_bundle(storage.local_path(version.file.name, version.sha256))
    ids = bundle.arrays[name]
    return str(ids[min(index, len(ids) - 1)])


def _keep(path, password):
    """Write ``password`` to ``path``, readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(password + "\n")


class Command(BaseCommand):
    help = (
        "Create a superuser for trying the service (or keep the existing one and its password), print its "
        "password, an API token and curl lines for the active models. The password changes only with "
        "--reset-password; --password-file keeps it in a private file so later runs can show it again."
    )

    def add_arguments(self, parser):
        parser.add_argument("--username", default="demo")
        parser.add_argument("--base-url", default="http://127.0.0.1:8000")
        parser.add_argument(
            "--password-file",
            type=Path,
            metavar="FILE",
            help="keep the password in FILE (owner-only) and show it again on later runs",
        )
        parser.add_argument(
            "--reset-password", action="store_true", help="set a new password even if the user exists"
        )

    def handle(self, *args, username, base_url, password_file, reset_password, **options):
        users = get_user_model()
        user = users.objects.filter(username=username).first()
        created = user is None
        if created:
            user = users(username=username)
        user.is_staff = user.is_superuser = True
        # An account demo_setup made to build and activate the demo versions has no password yet.
        new = created or not user.has_usable_password()
        if new or reset_password:
            password = secrets.token_urlsafe(12)
            user.set_password(password)
            if password_file is not None:
                _keep(password_file, password)
            shown = f"password {password}" + ("" if new else " (new)")
        else:
            kept = password_file.read_text().strip() if password_file and password_file.is_file() else ""
            if kept and user.check_password(kept):
                shown = f"password {kept}"
            else:
                shown = "password unchanged (not shown; --reset-password sets a new one)"
        user.save()
        token, _ = Token.objects.get_or_create(user=user)
        cf = selectors.active_version("cf")
        if cf is None:
            raise CommandError("no active CF version: run bundle_models --activate first")
        # Similar items come from the CB version, whose catalogue may differ from the CF one's
        # (a model of the user's own beside the demo's CB): its own first item always works.
        cb = selectors.active_version("cb")
        try:
            customer = _first_id(cf, "user_ids")
            item = _first_id(cb, "item_ids") if cb is not None else None
        except BundleError as exc:
            raise CommandError(str(exc)) from exc
        header = f'-H "Authorization: Token {token.key}"'
        self.stdout.write(f"admin:    {base_url}/admin/  user {username}  {shown}")
        self.stdout.write(f"API docs: {base_url}/api/docs/")
        self.stdout.write(f"token:    {token.key}")
        self.stdout.write(f"curl -s {header} '{base_url}/api/v1/recommendations/{customer}/?k=5'")
        if item is None:
            self.stdout.write(
                "(no active CB version: similar items and hybrid answers need one; activate one in the admin)"
            )
            return
        self.stdout.write(f"curl -s {header} '{base_url}/api/v1/items/{item}/similar/?k=5'")
        self.stdout.write(
            f"curl -s {header} '{base_url}/api/v1/recommendations/{customer}/?k=5&strategy=hybrid&weight=0.7'"
        )
