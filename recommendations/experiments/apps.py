from django.apps import AppConfig


class ExperimentsConfig(AppConfig):
    """Experiments: split a kind's traffic between its active version and candidates."""

    name = "recommendations.experiments"
    label = "experiments"
    verbose_name = "Experiments"
