"""Users by role, the one way the suite makes people: ``person("staff+view_modelversion")``.

Roles: ``anonymous`` (no user), ``user``, ``staff``, ``staff+<codename>[+<codename>…]`` (staff
with those ``modelstore`` permissions) and ``superuser``.
"""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient


def person(role, *, username=None):
    """Create and return the user of ``role`` (see the module docstring); None for anonymous."""
    users = get_user_model()
    if role == "anonymous":
        return None
    if role == "superuser":
        return users.objects.create_superuser(username or "root-superuser", password="pw-root-1")
    base, *codenames = role.split("+")
    if base not in ("user", "staff"):
        raise ValueError(f"unknown role {role!r}: anonymous, user, staff, staff+<codename> or superuser")
    user = users.objects.create_user(
        username or role.replace("+", "-"), password="pw-staff-1", is_staff=base == "staff"
    )
    for codename in codenames:
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label="modelstore", codename=codename)
        )
    return user


def api_client(user):
    """Return an API client that sends ``user``'s token (a plain client for None)."""
    client = APIClient()
    if user is not None:
        token, _ = Token.objects.get_or_create(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client
