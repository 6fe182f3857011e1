"""URLs of the experiments API, included under /api/v1/ in the ``api`` namespace."""

from django.urls import path

from . import views

urlpatterns = [
    path("experiments/", views.ExperimentListView.as_view(), name="experiment-list"),
    path("experiments/<str:experiment>/", views.ExperimentDetailView.as_view(), name="experiment-detail"),
    path("experiments/<str:experiment>/stop/", views.ExperimentStopView.as_view(), name="experiment-stop"),
]
