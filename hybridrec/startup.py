"""Start-up checks shared by ``manage.py`` and gunicorn's boot: one line per problem."""

import sys

from django.core.exceptions import ImproperlyConfigured


def settings_problems():
    """Set Django up and return its serious system-check problems as one-line strings."""
    import django
    from django.core import checks

    try:
        django.setup()
    except ImproperlyConfigured as exc:
        return [str(exc)]
    found = checks.run_checks(include_deployment_checks=False)
    return [f"{problem.msg} ({problem.id})" for problem in found if problem.is_serious()]


def exit_on_settings_problems():
    """Print each problem on its own line to stderr and exit 1 when there is any."""
    problems = settings_problems()
    if problems:
        sys.exit("\n".join(f"hybridrec: {line}" for line in problems))
