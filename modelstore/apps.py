from django.apps import AppConfig


class ModelstoreConfig(AppConfig):
    name = "modelstore"
    verbose_name = "Model store"
