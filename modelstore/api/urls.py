"""URLs of the registry API, included under /api/v1/ in the ``api`` namespace."""

from django.urls import path

from . import views

urlpatterns = [
    path("models/", views.VersionListView.as_view(), name="model-list"),
    path("models/rollback/", views.RollbackView.as_view(), name="model-rollback"),
    path("models/<str:version>/", views.VersionDetailView.as_view(), name="model-detail"),
    path("models/<str:version>/activate/", views.ActivateView.as_view(), name="model-activate"),
    path("models/<str:version>/verify/", views.VerifyView.as_view(), name="model-verify"),
    path("models/<str:version>/file/", views.VersionFileView.as_view(), name="model-file"),
]
