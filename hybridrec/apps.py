from django.apps import AppConfig
from django.contrib.admin.apps import AdminConfig


class HybridrecConfig(AppConfig):
    """The project itself: registers the settings checks."""

    name = "hybridrec"
    verbose_name = "hybridrec"

    def ready(self):
        from . import checks  # noqa: F401 - registers the checks
        from .metrics import connect_task_signals

        connect_task_signals()


class HybridrecAdminConfig(AdminConfig):
    """django.contrib.admin, with the project's site as ``admin.site``."""

    default_site = "hybridrec.admin.HybridrecAdminSite"
