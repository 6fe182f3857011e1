from django.apps import AppConfig


class ExperimentsConfig(AppConfig):
    """Experiments: split a kind's traffic between its active version and candidates."""

    name = "recommendations.experiments"
    label = "experiments"
    verbose_name = "Experiments"

    def ready(self):
        # The registry cannot import this app, so the app hands it its rule (modelstore.guards).
        from modelstore.guards import register_activation_guard

        from .guards import refuse_while_running

        register_activation_guard(refuse_while_running)
