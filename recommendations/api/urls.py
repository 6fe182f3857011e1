"""URLs of the REST API, mounted at /api/v1/ under the ``api`` namespace."""

from django.urls import path

from . import versions, views

app_name = "api"

urlpatterns = [
    path("recommendations/batch/", views.BatchView.as_view(), name="recommendations-batch"),
    path("recommendations/<str:customer_id>/", views.RecommendationView.as_view(), name="recommendations"),
    path("items/<str:item_id>/similar/", views.SimilarItemsView.as_view(), name="similar-items"),
    path("models/", versions.VersionListView.as_view(), name="model-list"),
    path("models/rollback/", versions.RollbackView.as_view(), name="model-rollback"),
    path("models/<str:version>/", versions.VersionDetailView.as_view(), name="model-detail"),
    path("models/<str:version>/activate/", versions.ActivateView.as_view(), name="model-activate"),
    path("models/<str:version>/verify/", versions.VerifyView.as_view(), name="model-verify"),
    path("models/<str:version>/file/", versions.VersionFileView.as_view(), name="model-file"),
    path("health/", views.HealthView.as_view(), name="health"),
    path("health/live/", views.HealthLiveView.as_view(), name="health-live"),
    path("health/ready/", views.HealthReadyView.as_view(), name="health-ready"),
]
