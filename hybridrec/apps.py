from django.apps import AppConfig


class HybridrecConfig(AppConfig):
    """The project itself: registers the settings checks."""

    name = "hybridrec"
    verbose_name = "hybridrec"

    def ready(self):
        from . import checks  # noqa: F401 - registers the checks
