"""Tell a database that was never migrated from any other database error."""

from django.db import DatabaseError, connection

NO_TABLES = "the database has no tables: run `manage.py migrate`"


def has_no_tables(exc=None):
    """Return True when ``exc`` (or the current state) means ``migrate`` has not been run.

    Only database errors are looked at; the check asks the database whether the registry's
    table exists, so a missing table is told apart from a database that is down.
    """
    if exc is not None and not isinstance(exc, DatabaseError):
        return False
    try:
        return "modelstore_modelversion" not in connection.introspection.table_names()
    except DatabaseError:
        return False
