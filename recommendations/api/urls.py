"""URLs of the recommendation API, included under /api/v1/ in the ``api`` namespace (``hybridrec.api.urls``)."""

from django.urls import path

from . import views

urlpatterns = [
    path("recommendations/batch/", views.BatchView.as_view(), name="recommendations-batch"),
    path("recommendations/<str:customer_id>/", views.RecommendationView.as_view(), name="recommendations"),
    path("items/<str:item_id>/similar/", views.SimilarItemsView.as_view(), name="similar-items"),
    path("health/", views.HealthView.as_view(), name="health"),
    path("health/live/", views.HealthLiveView.as_view(), name="health-live"),
    path("health/ready/", views.HealthReadyView.as_view(), name="health-ready"),
]
