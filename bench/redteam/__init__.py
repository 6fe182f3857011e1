"""The red-team run (``make attack``): hostile families against a real gunicorn over PostgreSQL."""
