#!/usr/bin/env python
"""Django's command-line utility for hybridrec."""

import os
import sys


def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hybridrec.settings")
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line
    from django.db import DatabaseError

    try:
        execute_from_command_line(sys.argv)
    except ImproperlyConfigured as exc:
        sys.exit(f"hybridrec: {exc}")  # a setting that does not parse: one line, exit 1
    except DatabaseError as exc:
        from hybridrec.dbstate import NO_TABLES, has_no_tables

        if sys.argv[1:2] != ["migrate"] and has_no_tables(exc):
            sys.exit(NO_TABLES)
        raise


if __name__ == "__main__":
    main()
