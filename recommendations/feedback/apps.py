from django.apps import AppConfig


class FeedbackConfig(AppConfig):
    """Events clients report (``POST /api/v1/events/``): the measure of experiments, the data of retraining."""

    name = "recommendations.feedback"
    label = "feedback"
    verbose_name = "Feedback"
