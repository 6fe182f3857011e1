"""What the registry commands share: progress lines, summaries and error mapping."""

import getpass
import sys
import time
from contextlib import contextmanager

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError

from modelstore import selectors
from modelstore.bundles import BundleError
from modelstore.exceptions import RegistryError
from modelstore.formatting import human_bytes, version_contents


def summary(version, seconds=None):
    """Return the one-line summary of a version."""
    parts = [
        f"{version.kind} version {version.pk} {version.label}: {version.status}",
        human_bytes(version.size_bytes),
        *version_contents(version),
        version.compression or "uncompressed",
        "active" if version.is_active else None,
        f"{seconds:.1f} s" if seconds is not None else None,
    ]
    line = ", ".join(part for part in parts if part)
    if version.error:
        line += f" — {version.error}"
    return line


class Progress:
    """Stage lines with elapsed seconds on stderr, only when it is a terminal."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.enabled = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.started = time.perf_counter()

    @contextmanager
    def stage(self, text):
        begun = time.perf_counter()
        if self.enabled:
            self.stream.write(f"  {text}…")
            self.stream.flush()
        try:
            yield
        finally:
            if self.enabled:
                self.stream.write(f" {time.perf_counter() - begun:.1f} s\n")
                self.stream.flush()

    @property
    def seconds(self):
        return time.perf_counter() - self.started


@contextmanager
def command_errors():
    """Turn bundle and registry errors into a one-line CommandError (non-zero exit)."""
    try:
        yield
    except (BundleError, RegistryError, ValueError, OSError) as exc:
        raise CommandError(str(exc)) from exc


def add_user_option(parser):
    """Add ``--user``: who an activation made by this command is recorded as."""
    parser.add_argument(
        "--user",
        metavar="USERNAME",
        help="Record activations as made by this Django user (default: the Django user named like "
        "your login, if there is one; otherwise they are shown as made from the command line).",
    )


def acting_user(username=None):
    """Return the Django user named ``username`` (an error if none), else the one named like the OS login, or None."""
    model = get_user_model()
    field = model.USERNAME_FIELD
    if username:
        user = model.objects.filter(**{field: username}).first()
        if user is None:
            raise CommandError(f"no Django user named {username!r} (--user)")
        return user
    try:
        login = getpass.getuser()
    except (KeyError, OSError):  # no login name in the environment or the password database
        return None
    return model.objects.filter(**{field: login}, is_active=True).first()


def not_applied(version, *, label="", compress=None):
    """Return notes on the options that did nothing because the content was registered before."""
    given = {"label": label, "compress": compress}
    unapplied = selectors.version_unapplied_options(version, label=label, compress=compress)
    return [f"--{option} {given[option]}: {why}" for option, why in unapplied.items()]
