"""Admin for the registry, by concern: versions (list, page, actions), their own pages, audit.

``versions`` declares ``ModelVersionAdmin``; ``pages`` holds its own pages (upload, build,
activate, roll back, download); ``panels`` and ``comparison`` what those pages show;
``audit`` the read-only list of activations.
"""

from . import audit, versions

__all__ = ["audit", "versions"]
