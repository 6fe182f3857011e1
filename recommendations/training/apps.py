from django.apps import AppConfig


class TrainingConfig(AppConfig):
    """Training: ALS and TF-IDF models from files, their evaluation, and the doors that run them."""

    name = "recommendations.training"
    label = "training"
    verbose_name = "Training"
