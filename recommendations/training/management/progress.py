"""Progress lines of the training commands, on stderr."""

from collections.abc import Callable

from django.core.management.base import BaseCommand


def stderr_progress(command: BaseCommand, verbosity: int, *, at_least: int = 1) -> Callable[[str], None]:
    """Return a ``progress(message)`` that writes to ``command``'s stderr from ``at_least`` verbosity on."""

    def progress(message: str) -> None:
        if verbosity >= at_least:
            command.stderr.write(message, style_func=lambda text: text)

    return progress
