import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from rest_framework.authtoken.models import Token

from modelstore import selectors, storage
from modelstore.bundles import BundleError, open_bundle


def _first_id(version, name, index=0):
    bundle = open_bundle(storage.local_path(version.file.name, version.sha256))
    ids = bundle.arrays[name]
    return str(ids[min(index, len(ids) - 1)])


class Command(BaseCommand):
    help = (
        "Create (or reset) a superuser for trying the service, print its password, an API token and "
        "curl lines for the active models."
    )

    def add_arguments(self, parser):
        parser.add_argument("--username", default="demo")
        parser.add_argument("--base-url", default="http://127.0.0.1:8000")

    def handle(self, *args, username, base_url, **options):
        users = get_user_model()
        user = users.objects.filter(username=username).first() or users(username=username)
        password = secrets.token_urlsafe(12)
        user.is_staff = user.is_superuser = True
        user.set_password(password)
        user.save()
        token, _ = Token.objects.get_or_create(user=user)
        cf = selectors.active_version("cf")
        if cf is None:
            raise CommandError("no active CF version: run bundle_models --activate first")
        try:
            customer = _first_id(cf, "user_ids")
            item = _first_id(cf, "item_ids")
        except BundleError as exc:
            raise CommandError(str(exc)) from exc
        header = f'-H "Authorization: Token {token.key}"'
        self.stdout.write(f"admin:    {base_url}/admin/  user {username}  password {password}")
        self.stdout.write(f"API docs: {base_url}/api/docs/")
        self.stdout.write(f"token:    {token.key}")
        self.stdout.write(f"curl -s {header} '{base_url}/api/v1/recommendations/{customer}/?k=5'")
        self.stdout.write(f"curl -s {header} '{base_url}/api/v1/items/{item}/similar/?k=5'")
        self.stdout.write(
            f"curl -s {header} '{base_url}/api/v1/recommendations/{customer}/?k=5&strategy=hybrid&weight=0.7'"
        )
